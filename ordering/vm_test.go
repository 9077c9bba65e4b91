package ordering

import (
	"bytes"
	"reflect"
	"testing"
)

func vmApply(t *testing.T, m *Machine, cmd []byte) VMResult {
	t.Helper()
	res, ok := m.Apply(1, cmd).(VMResult)
	if !ok {
		t.Fatalf("Apply returned %T", m.Apply(1, cmd))
	}
	return res
}

// TestVMLifecycle walks one VM through two migrations and every refusal
// the API promises, checking that a refusal changes nothing.
func TestVMLifecycle(t *testing.T) {
	var m Machine
	pol := VMPolicy{MaxSlewPPM: 500, MaxLagNs: 1e9}
	steps := []struct {
		name string
		cmd  []byte
		code VMErrorCode
	}{
		{"freeze unknown", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 5}), VMNotFound},
		{"resume unknown at gen 2", EncodeVMResume(VMResume{VM: "vm1", Host: 1, Generation: 2, RefNs: 100}), VMNotFound},
		{"register", EncodeVMResume(VMResume{VM: "vm1", Host: 1, Generation: 1, RefNs: 100, Policy: pol, RequestID: "a"}), 0},
		{"resume while running", EncodeVMResume(VMResume{VM: "vm1", Host: 2, Generation: 2, RefNs: 150}), VMFailedPrecondition},
		{"freeze by a stranger", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 2, Generation: 1, TimeNs: 200}), VMFailedPrecondition},
		{"freeze with a wrong generation", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 7, TimeNs: 200}), VMFailedPrecondition},
		{"freeze below the floor", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 50}), VMFailedPrecondition},
		{"freeze", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 200, RequestID: "b"}), 0},
		{"freeze again, same time", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 200}), 0},
		{"freeze again, other time", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 300}), VMFailedPrecondition},
		{"resume skipping a generation", EncodeVMResume(VMResume{VM: "vm1", Host: 2, Generation: 3, RefNs: 250}), VMFailedPrecondition},
		{"resume on 2 wins", EncodeVMResume(VMResume{VM: "vm1", Host: 2, Generation: 2, RefNs: 250, Policy: pol, RequestID: "c"}), 0},
		{"concurrent resume on 3 loses", EncodeVMResume(VMResume{VM: "vm1", Host: 3, Generation: 2, RefNs: 251, RequestID: "d"}), VMFailedPrecondition},
		{"retry of the winner's resume", EncodeVMResume(VMResume{VM: "vm1", Host: 2, Generation: 2, RefNs: 250, Policy: pol, RequestID: "c"}), 0},
		{"stale owner freezes", EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 400}), VMFailedPrecondition},
	}
	for _, s := range steps {
		before, _ := m.VM("vm1")
		res := vmApply(t, &m, s.cmd)
		after, _ := m.VM("vm1")
		if res.Code != s.code {
			t.Fatalf("%s: code %d (%s), want %d", s.name, res.Code, res.Msg, s.code)
		}
		if s.code != 0 && !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: refused, yet the record went from %+v to %+v", s.name, before, after)
		}
		if s.code != 0 && res.Msg == "" {
			t.Fatalf("%s: refused without a reason", s.name)
		}
	}
	rec, _ := m.VM("vm1")
	want := VM{ID: "vm1", Owner: 2, Generation: 2, State: VMRunning, FloorNs: 200, ResumeRefNs: 250, Policy: pol}
	if rec != want {
		t.Fatalf("record %+v, want %+v", rec, want)
	}
	// A retried request gets its first answer even after the state moved.
	if res := vmApply(t, &m, EncodeVMFreeze(VMFreeze{VM: "vm1", Owner: 1, Generation: 1, TimeNs: 200, RequestID: "b"})); res.Code != 0 || res.VM.State != VMFrozen {
		t.Fatalf("retried freeze: %+v", res)
	}
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var r Machine
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.VMs(), m.VMs()) {
		t.Fatalf("restored %+v, want %+v", r.VMs(), m.VMs())
	}
	if res := vmApply(t, &r, EncodeVMResume(VMResume{VM: "vm1", Host: 2, Generation: 2, RefNs: 250, Policy: pol, RequestID: "c"})); res.Code != 0 {
		t.Fatalf("a restored machine forgot request c: %+v", res)
	}
	if res := vmApply(t, &m, EncodeVMRelease(VMRelease{VM: "vm1"})); res.Code != 0 {
		t.Fatal(res.Msg)
	}
	if _, ok := m.VM("vm1"); ok || vmApply(t, &m, EncodeVMRelease(VMRelease{VM: "vm1"})).Code != VMNotFound {
		t.Fatal("release did not end the record")
	}
}
