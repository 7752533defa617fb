#!/bin/sh
# A light stand-in MTA for the sendwrap integration tests (sw_harness
# LIGHT_MTA), for runs that need only the conversation: many connections
# at once, or many one after another.  It greets as standin_mta does,
# waits for one line (or end of file), says bye and exits; it records
# nothing, and writes nothing to fd 2.  A few shell builtins: about a
# millisecond, where standin_mta's two stages take tens of milliseconds
# of CPU.
printf '220 standin\r\n'
IFS= read -r line || exit 0
printf '221 bye\r\n'
