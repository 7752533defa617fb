/*
 * target0 - the stand-in MTA of the lean harness: exits at once, writing
 * nothing, so that what is timed is the wrapper and one exec.  Linked
 * statically, as target220 is.
 */
int
main(void)
{
	return 0;
}
