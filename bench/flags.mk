# bench/flags.mk - read together with the project Makefile, prints the exact
# compile and link commands sendwrap is built with for the chosen variant,
# so that floor 1 (bench/floor1.c) is built the same way:
#   make -s -f Makefile -f bench/flags.mk bench-flags [STATIC=1]
.PHONY: bench-flags
bench-flags:
	@echo 'COMPILE=$(COMPILE)'
	@echo 'LINK=$(LINK)'
	@echo 'BIN=$(B)/sendwrap'
