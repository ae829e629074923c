package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

func sanctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no stray user config
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

func TestSimInfoTable(t *testing.T) {
	out, err := sanctl(t, "sim", "info")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^type +SAN NIC \(0x53414e43\)$`, out)
	assert.Regexp(t, `(?m)^version +0\.1\.0$`, out)
	assert.Regexp(t, `(?m)^connections +256$`, out)
	assert.Regexp(t, `(?m)^clock +156\.25 MHz$`, out)
}

func TestSimInfoJSON(t *testing.T) {
	out, err := sanctl(t, "sim", "info", "-o", "json")
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, float64(regs.NICType), got["type"])
	assert.Equal(t, float64(regs.ContractID), got["contract_id"])
	assert.Equal(t, float64(256), got["n_qp"])
	assert.Equal(t, "sim0", got["device"])
}

func TestBadOutputFormat(t *testing.T) {
	_, err := sanctl(t, "sim", "info", "-o", "yaml")
	assert.ErrorContains(t, err, `unknown output format "yaml"`)
}

func TestMissingModelFlag(t *testing.T) {
	_, err := sanctl(t, "sim", "info", "--model", "/nonexistent/libsanmodel.so")
	assert.ErrorIs(t, err, sim.ErrModelNotBuilt)
}

func TestBadHostMemoryFlagNamesKey(t *testing.T) {
	_, err := sanctl(t, "sim", "info", "--host-memory-mib", "-1")
	assert.ErrorContains(t, err, "sim.host_memory_mib")
}
