# bench/prelude.sh - what every bench script does first, sourced as
#     . "$(dirname "$0")/prelude.sh" NAME "$@"
# The repository becomes the working directory (ROOT), W is
# build/bench-NAME, QUICK is 1 with --quick (any other argument is a
# usage error), and the bench group of tests/deps is installed and
# verified.
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
