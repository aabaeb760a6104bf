# tests/fuzz/qcow2.mk - the qcow2 fuzz target and the workload tool the
# qcow2 compat tests run (built with the test binaries). The fuzzer's
# stderr (expected corruption reports) goes to $(B)/fuzz_qcow2.log and is
# shown only when a run crashes.

QCOW2_TOOL := $(B)/tests/tools/qcow2-workload
QCOW2_FUZZ := $(B)/tests/fuzz/fuzz_qcow2

$(QCOW2_TOOL): $(B)/tests/tools/qcow2-workload.o \
		$(B)/tests/helpers/qcow2_workload.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(QCOW2_FUZZ): $(B)/tests/fuzz/fuzz_qcow2.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

-include $(B)/tests/tools/qcow2-workload.d $(B)/tests/fuzz/fuzz_qcow2.d

# The tests find the tool through BUILD_DIR.
check check-compat check-iotests: $(QCOW2_TOOL)

.PHONY: check-fuzz-qcow2
check-fuzz-qcow2: $(QCOW2_FUZZ)
	$(Q)$(QCOW2_FUZZ) -n $${FUZZ_RUNS:-3000} 2>$(B)/fuzz_qcow2.log || \
		{ tail -n 40 $(B)/fuzz_qcow2.log; exit 1; }
check-fuzz: check-fuzz-qcow2
