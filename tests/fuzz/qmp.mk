# tests/fuzz/qmp.mk - the QMP monitor's test programs:
#  - qmp-testd: a minimal QMP daemon the golden and compat tests talk to
#    (tests/iotests/2xx, tests/compat/2xx), built before those suites run;
#  - fuzz_qmp: feeds the JSON framing, the dispatcher and the validator
#    with mutated QMP input (check-fuzz-qmp, a bounded run).

QMP_TESTD := $(B)/tests/tools/qmp-testd
QMP_FUZZ := $(B)/tests/fuzz/fuzz_qmp

$(QMP_TESTD): $(B)/tests/tools/qmp-testd.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

-include $(B)/tests/tools/qmp-testd.d

check-iotests check-compat: $(QMP_TESTD)
check: $(QMP_TESTD)

$(QMP_FUZZ): $(B)/tests/fuzz/fuzz_qmp.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

-include $(B)/tests/fuzz/fuzz_qmp.d

# A bounded, seeded run under ASan/UBSan (whatever SANITIZE the caller
# chose): about 20 s on the CI machine.
QMP_FUZZ_SAN_B := build/$(BUILD)-address-undefined
QMP_FUZZ_ITERATIONS ?= 20000

.PHONY: check-fuzz-qmp
check-fuzz-qmp:
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined \
		$(QMP_FUZZ_SAN_B)/tests/fuzz/fuzz_qmp
	$(Q)$(QMP_FUZZ_SAN_B)/tests/fuzz/fuzz_qmp -n $(QMP_FUZZ_ITERATIONS)

check-fuzz: check-fuzz-qmp
