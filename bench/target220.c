/*
 * target220 - the stand-in MTA of the benchmark: writes one SMTP greeting
 * line on fd 1 and exits.  Linked statically so that its own start-up
 * cost is as small as a C program's can be.
 */
#include <unistd.h>

int
main(void)
{
	static const char greeting[] = "220 bench.invalid ESMTP target220\r\n";

	return write(1, greeting, sizeof greeting - 1) ==
	    (ssize_t)(sizeof greeting - 1) ? 0 : 1;
}
