# bench/prelude.sh - what every bench script does first, sourced as
#     . "$(dirname "$0")/prelude.sh" NAME "$@"
# The repository becomes the working directory (ROOT), W is
# build/bench-NAME, QUICK is 1 with --quick (any other argument is a
# usage error), and the bench group of tests/deps is installed and
# verified.  build_floor1 DIR [STATIC=1] builds floor 1 into DIR/floor1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$ROOT/build/bench-$1
QUICK=0
case "${2:-}" in
--quick) QUICK=1 ;;
"") ;;
*) echo "usage: bench/$(basename "$0") [--quick]" >&2; exit 2 ;;
esac
tests/deps bench
tests/deps --verify bench
mkdir -p "$W"

# floor 1 (bench/floor1.c: one bare exec) into DIR/floor1, compiled and
# linked with exactly sendwrap's commands (bench/flags.mk); the other
# arguments go to make (STATIC=1 for the static build's).
build_floor1() {
	local dir=$1 COMPILE LINK BIN
	shift
	eval "$(make -s --no-print-directory -f Makefile -f bench/flags.mk \
		bench-flags "$@" | sed 's/^\([A-Z]*\)=\(.*\)$/\1="\2"/')"
	$COMPILE -c -o "$dir/floor1.o" bench/floor1.c
	$LINK -o "$dir/floor1" "$dir/floor1.o"
}
