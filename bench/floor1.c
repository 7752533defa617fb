/*
 * floor1 - the physical floor of a greeting-delay wrapper: what any such
 * wrapper must do, and nothing else.  Find the peer (getpeername), wait
 * (select on fd 0), exec the program.  Built by bench/run with exactly
 * the compile and link flags of sendwrap (see bench/flags.mk).
 *
 *   floor1 SECONDS /path/to/program [arg ...]
 *
 * SECONDS 0 is the pass-through path; bench/run uses 30 to hold idle
 * connections for the memory measurement.  A client that talks or hangs
 * up during the wait is dropped.
 */
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct timeval tv = { 0, 0 };
	fd_set rfds;

	if (argc < 3)
		return 100;
	tv.tv_sec = atoi(argv[1]);
	if (getpeername(0, (struct sockaddr *)&ss, &len) != 0)
		len = 0;
	FD_ZERO(&rfds);
	FD_SET(0, &rfds);
	if (select(1, &rfds, NULL, NULL, &tv) > 0)
		return 0;
	execv(argv[2], argv + 2);
	return 111;
}
