package ordering

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
)

// VMState is where a VM's record stands.
type VMState uint8

const (
	// VMRunning: the owner serves the VM's clock.
	VMRunning VMState = 1
	// VMFrozen: the VM is leaving its owner; its floor is committed and
	// only a Resume with the next generation may move it.
	VMFrozen VMState = 2
)

func (s VMState) String() string {
	switch s {
	case VMRunning:
		return "RUNNING"
	case VMFrozen:
		return "FROZEN"
	}
	return fmt.Sprintf("VMState(%d)", uint8(s))
}

// VMPolicy bounds how a VM's clock converges to the reference.
type VMPolicy struct {
	// MaxSlewPPM is ρ_vm: the VM clock's rate stays within 1±ρ_vm of the
	// reference until it meets it.
	MaxSlewPPM int64
	// MaxLagNs, if positive, allows one forward step at resume so the VM
	// never lags the reference by more than this.
	MaxLagNs int64
}

// VM is one VM's committed record.
type VM struct {
	ID         string
	Owner      consensus.NodeID
	Generation uint64
	State      VMState
	// FloorNs is the VM's time committed at its last freeze (at its first
	// resume: the reference then).
	FloorNs int64
	// ResumeRefNs is the owner's reference reading committed at resume.
	ResumeRefNs int64
	Policy      VMPolicy
}

// The VM commands. Each carries a RequestID: a retry with the same id
// gets the same answer, whatever happened since.
type (
	// VMFreeze commits a floor: the VM's time as it leaves Owner.
	VMFreeze struct {
		VM         string
		Owner      consensus.NodeID
		Generation uint64
		TimeNs     int64
		RequestID  string
	}
	// VMResume makes Host the owner at Generation, from the reference
	// reading RefNs it took at resume. A VM without a record is created at
	// generation 1, its floor the reference.
	VMResume struct {
		VM         string
		Host       consensus.NodeID
		Generation uint64
		RefNs      int64
		Policy     VMPolicy
		RequestID  string
	}
	// VMRelease ends a VM's record.
	VMRelease struct {
		VM        string
		RequestID string
	}
)

// VMErrorCode classifies a refused VM command; the API maps it to a gRPC
// status.
type VMErrorCode uint8

const (
	VMNotFound           VMErrorCode = 1
	VMFailedPrecondition VMErrorCode = 2
	VMInvalid            VMErrorCode = 3
)

// VMResult is what Apply returns for a VM command: the record after it,
// or why it was refused (the record is then unchanged).
type VMResult struct {
	VM   VM
	Code VMErrorCode // 0: applied
	Msg  string
}

// Err is the refusal as an error, or nil.
func (r VMResult) Err() error {
	if r.Code == 0 {
		return nil
	}
	return &VMError{Code: r.Code, Msg: r.Msg}
}

// VMError is a refused VM command.
type VMError struct {
	Code VMErrorCode
	Msg  string
}

func (e *VMError) Error() string { return "vm: " + e.Msg }

// vmRequestsKept bounds the remembered answers per VM: retries come soon
// after the original, and a VM sees few commands.
const vmRequestsKept = 32

type vmEntry struct {
	rec VM
	// answers holds recent request ids and their results, oldest first.
	answers []vmAnswer
}

type vmAnswer struct {
	id  string
	res VMResult
}

func refuse(code VMErrorCode, format string, args ...any) VMResult {
	return VMResult{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func (m *Machine) applyVM(cmd any) VMResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vms == nil {
		m.vms = map[string]*vmEntry{}
	}
	var id, rid string
	switch c := cmd.(type) {
	case VMFreeze:
		id, rid = c.VM, c.RequestID
	case VMResume:
		id, rid = c.VM, c.RequestID
	case VMRelease:
		id, rid = c.VM, c.RequestID
	}
	e := m.vms[id]
	if e != nil && rid != "" {
		if i := slices.IndexFunc(e.answers, func(a vmAnswer) bool { return a.id == rid }); i >= 0 {
			return e.answers[i].res
		}
	}
	var res VMResult
	switch c := cmd.(type) {
	case VMFreeze:
		res = freeze(e, c)
	case VMResume:
		if e == nil {
			e = &vmEntry{}
		}
		res = resume(e, c)
		if res.Code == 0 {
			m.vms[id] = e
		}
	case VMRelease:
		if e == nil {
			return refuse(VMNotFound, "unknown VM %q", c.VM)
		}
		delete(m.vms, id)
		return VMResult{VM: e.rec}
	}
	if e != nil && rid != "" {
		e.answers = append(e.answers, vmAnswer{id: rid, res: res})
		if len(e.answers) > vmRequestsKept {
			e.answers = slices.Delete(e.answers, 0, len(e.answers)-vmRequestsKept)
		}
	}
	return res
}

func freeze(e *vmEntry, c VMFreeze) VMResult {
	if e == nil {
		return refuse(VMNotFound, "unknown VM %q", c.VM)
	}
	r := &e.rec
	switch {
	case c.Owner != r.Owner || c.Generation != r.Generation:
		return refuse(VMFailedPrecondition, "VM %q is owned by host %d at generation %d; host %d at generation %d may not freeze it",
			c.VM, r.Owner, r.Generation, c.Owner, c.Generation)
	case r.State == VMFrozen && c.TimeNs != r.FloorNs:
		return refuse(VMFailedPrecondition, "VM %q is already frozen at %d ns, not %d", c.VM, r.FloorNs, c.TimeNs)
	case r.State == VMFrozen:
		return VMResult{VM: *r}
	case c.TimeNs < r.FloorNs:
		return refuse(VMFailedPrecondition, "VM %q: floor %d ns is below its previous floor %d ns", c.VM, c.TimeNs, r.FloorNs)
	}
	r.State, r.FloorNs = VMFrozen, c.TimeNs
	return VMResult{VM: *r}
}

func resume(e *vmEntry, c VMResume) VMResult {
	r := &e.rec
	switch {
	case r.ID == "" && c.Generation != 1:
		return refuse(VMNotFound, "unknown VM %q: a first resume has generation 1, not %d", c.VM, c.Generation)
	case r.ID == "":
		*r = VM{ID: c.VM, FloorNs: c.RefNs}
	case r.State != VMFrozen:
		return refuse(VMFailedPrecondition, "VM %q is running on host %d at generation %d: resume needs a freeze first",
			c.VM, r.Owner, r.Generation)
	case c.Generation != r.Generation+1:
		return refuse(VMFailedPrecondition, "VM %q is frozen at generation %d: resume with generation %d, not %d",
			c.VM, r.Generation, r.Generation+1, c.Generation)
	}
	r.Owner, r.Generation, r.State, r.ResumeRefNs, r.Policy = c.Host, c.Generation, VMRunning, c.RefNs, c.Policy
	return VMResult{VM: *r}
}

// VM returns a VM's record.
func (m *Machine) VM(id string) (VM, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.vms[id]
	if e == nil {
		return VM{}, false
	}
	return e.rec, true
}

// VMs returns every record, sorted by id.
func (m *Machine) VMs() []VM {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]VM, 0, len(m.vms))
	for _, e := range m.vms {
		out = append(out, e.rec)
	}
	slices.SortFunc(out, func(a, b VM) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// Encoders of the VM commands.

func EncodeVMFreeze(c VMFreeze) []byte {
	b := []byte{byte(KindVMFreeze), codecVersion}
	b = wire.AppendString(b, c.VM)
	b = binary.AppendUvarint(b, uint64(c.Owner))
	b = binary.AppendUvarint(b, c.Generation)
	b = binary.AppendVarint(b, c.TimeNs)
	return wire.AppendString(b, c.RequestID)
}

func EncodeVMResume(c VMResume) []byte {
	b := []byte{byte(KindVMResume), codecVersion}
	b = wire.AppendString(b, c.VM)
	b = binary.AppendUvarint(b, uint64(c.Host))
	b = binary.AppendUvarint(b, c.Generation)
	b = binary.AppendVarint(b, c.RefNs)
	b = binary.AppendVarint(b, c.Policy.MaxSlewPPM)
	b = binary.AppendVarint(b, c.Policy.MaxLagNs)
	return wire.AppendString(b, c.RequestID)
}

func EncodeVMRelease(c VMRelease) []byte {
	b := []byte{byte(KindVMRelease), codecVersion}
	b = wire.AppendString(b, c.VM)
	return wire.AppendString(b, c.RequestID)
}

func decodeVMFreeze(d *wire.Decoder) VMFreeze {
	return VMFreeze{VM: d.String(), Owner: consensus.NodeID(d.Uvarint()), Generation: d.Uvarint(),
		TimeNs: d.Varint(), RequestID: d.String()}
}

func decodeVMResume(d *wire.Decoder) VMResume {
	c := VMResume{VM: d.String(), Host: consensus.NodeID(d.Uvarint()), Generation: d.Uvarint(), RefNs: d.Varint()}
	c.Policy = VMPolicy{MaxSlewPPM: d.Varint(), MaxLagNs: d.Varint()}
	c.RequestID = d.String()
	return c
}

func decodeVMRelease(d *wire.Decoder) VMRelease {
	return VMRelease{VM: d.String(), RequestID: d.String()}
}

func appendVM(b []byte, v VM) []byte {
	b = wire.AppendString(b, v.ID)
	b = binary.AppendUvarint(b, uint64(v.Owner))
	b = binary.AppendUvarint(b, v.Generation)
	b = append(b, byte(v.State))
	b = binary.AppendVarint(b, v.FloorNs)
	b = binary.AppendVarint(b, v.ResumeRefNs)
	b = binary.AppendVarint(b, v.Policy.MaxSlewPPM)
	return binary.AppendVarint(b, v.Policy.MaxLagNs)
}

func decodeVM(d *wire.Decoder) VM {
	v := VM{ID: d.String(), Owner: consensus.NodeID(d.Uvarint()), Generation: d.Uvarint(), State: VMState(d.Byte())}
	v.FloorNs, v.ResumeRefNs = d.Varint(), d.Varint()
	v.Policy = VMPolicy{MaxSlewPPM: d.Varint(), MaxLagNs: d.Varint()}
	return v
}

// EncodeVMResult encodes a result, for members that forward a VM command
// to the leader.
func EncodeVMResult(r VMResult) []byte { return appendVMResult(nil, r) }

// DecodeVMResult decodes what EncodeVMResult wrote.
func DecodeVMResult(b []byte) (VMResult, error) {
	d := wire.NewDecoder(b, ErrCodec)
	r := decodeVMResult(&d)
	return r, d.Finish()
}

func appendVMResult(b []byte, r VMResult) []byte {
	b = appendVM(b, r.VM)
	b = append(b, byte(r.Code))
	return wire.AppendString(b, r.Msg)
}

func decodeVMResult(d *wire.Decoder) VMResult {
	return VMResult{VM: decodeVM(d), Code: VMErrorCode(d.Byte()), Msg: d.String()}
}
