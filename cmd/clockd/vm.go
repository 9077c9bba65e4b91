package main

// clockd vm: the VM clocks of the migration API from the command line,
// for host integration (deploy/libvirt's hook) and for operators.
//
// freeze and resume fill in what they are not told from the VM's record,
// read from the node at --addr: the fencing token (owner, generation),
// the generation to resume at, and a request id derived from both, so a
// retried call sends the same request and gets the same answer. Reading
// the record first never weakens the fencing: the server still checks the
// token against its committed record, and the caller's certificate
// against the owner.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
)

// The server's bounds on the ids a client sends.
const (
	vmMaxIDLen        = 128
	vmMaxRequestIDLen = 128
)

// vmWaitPollInterval is how often `vm resume --wait` reads the record
// while another host runs the VM. Each read is one local call; the
// interval adds at most this much to the time the VM clock stands at its
// floor after the freeze.
const vmWaitPollInterval = 100 * time.Millisecond

// The flags that name a VM or a fencing token have no CLOCKD_* variables:
// a variable left set in a shell must not choose the VM that is frozen or
// the token that passes the fencing. Nor do the policy flags: the
// daemon's CLOCKD_VM_MAX_SLEW_PPM and CLOCKD_VM_MAX_LAG already name its
// own defaults.
func vmFlag() cli.Flag {
	return &cli.StringFlag{Name: "vm", Usage: "the VM's `ID` (1 to 128 bytes), as its certificate's clockd:vm:ID names it"}
}

func vmRequestIDFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "request-id", Usage: "`ID` that makes a retry get the first call's answer (default: " + def + ")"}
}

func vmCommand() *cli.Command {
	return commandGroup(&cli.Command{
		Name:  "vm",
		Usage: "freeze, resume, read and list the VM clocks that live migration keeps monotonic",
		Description: "A VM's clock is frozen at a floor on the host it leaves and resumed, no lower,\n" +
			"on the host it moves to. freeze, resume and release take the owning host's node\n" +
			"certificate (node-<id>, with the host role) or the admin certificate; status and\n" +
			"list any host or admin certificate. deploy/libvirt has a libvirt hook that runs\n" +
			"freeze and resume around live migration.",
		Subcommands: []*cli.Command{vmFreezeCommand(), vmResumeCommand(), vmStatusCommand(), vmListCommand(), vmReleaseCommand()},
	})
}

func vmFreezeCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "freeze",
		Usage:     "commit a VM's floor as it leaves its owner",
		UsageText: "clockd vm freeze --vm ID [--vm-time TIME] [--owner N] [--generation G] [--if-owner] [--request-id R] [--json] [connection options]",
		Description: "Commits the VM's floor: when the owner serves the call, the larger of --vm-time\n" +
			"and the VM clock it serves; otherwise --vm-time, which is then required. Only\n" +
			"the current owner at the current generation may freeze (the fencing token); the\n" +
			"node refuses a stale token with \"failed precondition\" and a certificate that\n" +
			"does not speak for the owner with \"permission denied\".\n\n" +
			"--owner and --generation default to the record's, read from the node at --addr\n" +
			"(--owner 0 is that node). Without --vm-time, the token is checked against the\n" +
			"record first, and a VM already frozen at that token is reported, exit status 0,\n" +
			"as a retry's answer. --if-owner freezes only when the node at --addr owns the VM;\n" +
			"when another host does, or the VM has no record, it says so and exits 0 (for\n" +
			"hooks that run wherever a VM stops). The default --request-id is\n" +
			"freeze/<vm>/<generation>: the node answers a retry with the first call's\n" +
			"answer, even after the VM has moved on.\n\n" +
			"Prints the record; --json prints it as vm list --json prints each VM.",
		Flags: []cli.Flag{
			vmFlag(),
			&cli.StringFlag{Name: "vm-time", Usage: "the VM's time as it leaves: RFC 3339 (2026-01-02T15:04:05.123456789Z) or Unix nanoseconds"},
			&cli.Uint64Flag{Name: "owner", Usage: "the owner `ID` of the fencing token; 0: the node at --addr (default: the record's)"},
			&cli.Uint64Flag{Name: "generation", Usage: "the generation `G` of the fencing token (default: the record's)"},
			&cli.BoolFlag{Name: "if-owner", Usage: "freeze only if the node at --addr owns the VM; otherwise exit 0"},
			vmRequestIDFlag("freeze/<vm>/<generation>"),
		},
		Action: vmFreeze,
	}, true)
}

func vmResumeCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "resume",
		Usage:     "make the node at --addr a VM's owner, its clock resuming at no less than its floor",
		UsageText: "clockd vm resume --vm ID [--generation G] [--max-slew-ppm N] [--max-lag D] [--wait D] [--request-id R] [--json] [connection options]",
		Description: "The node at --addr becomes the VM's owner at --generation and commits its\n" +
			"reference reading; the VM clock starts at the floor and slews to the reference\n" +
			"at no more than --max-slew-ppm, stepping forward once if it lags more than\n" +
			"--max-lag (0: never). A VM without a record is registered at generation 1.\n\n" +
			"--generation defaults to the record's + 1 when the VM is frozen, and to 1 when it\n" +
			"has no record. When the VM already runs on the node at --addr, nothing is sent\n" +
			"and the record is printed, exit status 0. When it runs on another host, that\n" +
			"host must freeze it first: --wait D waits up to D for the freeze, then resumes\n" +
			"(the libvirt hook's incoming migration, whose switchover no hook sees). The\n" +
			"default --request-id is resume/<vm>/<generation>; policies not given take the\n" +
			"cluster's defaults.\n\n" +
			"Prints the record; --json prints it as vm list --json prints each VM.",
		Flags: []cli.Flag{
			vmFlag(),
			&cli.Uint64Flag{Name: "generation", Usage: "the generation `G` to resume at (default: the frozen one + 1, or 1 to register)"},
			&cli.Int64Flag{Name: "max-slew-ppm", Usage: "the VM clock's rate bound `N` while it converges, 1 to 999999 ppm", DefaultText: "the cluster's"},
			&cli.DurationFlag{Name: "max-lag", Usage: "the most the VM clock may lag the reference before one forward step; 0 never steps", DefaultText: "the cluster's"},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for another host that runs the VM to freeze it (default: do not wait)"},
			vmRequestIDFlag("resume/<vm>/<generation>"),
		},
		Action: vmResume,
	}, true)
}

func vmStatusCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "status",
		Usage:     "read a VM's clock on its owner",
		UsageText: "clockd vm status --vm ID [--json] [connection options]",
		Description: "On the VM's owner: the VM clock's time, the interval [earliest, latest] that\n" +
			"holds it (±uncertainty, the reference's widened by the lag), the reference's\n" +
			"status, the lag (reference minus VM clock: positive while the VM is behind),\n" +
			"whether it has converged, and the record. A frozen VM reads its floor,\n" +
			"unbounded.\n\n" +
			"On any other node: that the node does not own the VM, the owner's id and peer\n" +
			"address, and the record. This is information, not a failure: exit status 0.\n\n" +
			"--json prints one object: vm, served (the node owns the VM and the reading is\n" +
			"its clock), owner, owner_peer_addr (set when not served), reading (as clockd now\n" +
			"--json prints one; null when not served), lag_ns and converged (null when not\n" +
			"served), record (as vm list --json prints each VM).",
		Flags:  []cli.Flag{vmFlag()},
		Action: vmStatus,
	}, true)
}

func vmListCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "list",
		Usage:     "list every VM's record",
		UsageText: "clockd vm list [--json] [connection options]",
		Description: "One line per VM: its id, owner, generation, state (RUNNING or FROZEN), the floor\n" +
			"committed at its last freeze (at registration: the reference then), the owner's\n" +
			"reference reading at resume, and its policy.\n\n" +
			"--json prints one object: vms [{vm, owner, generation, state, floor,\n" +
			"floor_unix_nano, resume_ref, resume_ref_unix_nano, max_slew_ppm, max_lag_ns}].",
		Action: vmList,
	}, true)
}

func vmReleaseCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:        "release",
		Usage:       "end a VM's record",
		UsageText:   "clockd vm release --vm ID [--request-id R] [connection options]",
		Description: "Ends the record of a VM that no longer needs a clock, as when it is deleted.",
		Flags:       []cli.Flag{vmFlag(), vmRequestIDFlag("release/<vm>")},
		Action:      vmRelease,
	}, false)
}

// vmArgs are the checked flags every VM command shares.
type vmArgs struct {
	vm        string
	requestID string // "" when --request-id is not given
}

func vmParseArgs(c *cli.Context) (vmArgs, error) {
	a := vmArgs{vm: c.String("vm"), requestID: c.String("request-id")}
	switch {
	case a.vm == "":
		return a, clientUsage(c, "--vm is required")
	case len(a.vm) > vmMaxIDLen:
		return a, clientUsage(c, "--vm is %d bytes, at most %d", len(a.vm), vmMaxIDLen)
	case c.IsSet("request-id") && a.requestID == "":
		return a, clientUsage(c, "--request-id is empty")
	case len(a.requestID) > vmMaxRequestIDLen:
		return a, clientUsage(c, "--request-id is %d bytes, at most %d", len(a.requestID), vmMaxRequestIDLen)
	}
	return a, nil
}

// vmGeneration is --generation when given, which must not be 0.
func vmGeneration(c *cli.Context) (gen uint64, set bool, err error) {
	if !c.IsSet("generation") {
		return 0, false, nil
	}
	if gen = c.Uint64("generation"); gen == 0 {
		return 0, false, clientUsage(c, "--generation 0: want 1 or more")
	}
	return gen, true, nil
}

// vmRequestID is the default request id op/<vm>/<generation> (no
// generation when gen is 0). A VM id too long for it is replaced by its
// SHA-256, so that the id stays deterministic and within the server's
// bound.
func vmRequestID(op, vm string, gen uint64) string {
	suffix := ""
	if gen != 0 {
		suffix = "/" + strconv.FormatUint(gen, 10)
	}
	if id := op + "/" + vm + suffix; len(id) <= vmMaxRequestIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(vm))
	return op + "/sha256:" + hex.EncodeToString(sum[:]) + suffix
}

// vmParseTime reads RFC 3339 or Unix nanoseconds.
func vmParseTime(s string) (int64, error) {
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ns <= 0 {
			return 0, errors.New("want a time after 1970")
		}
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, errors.New("want RFC 3339 (2026-01-02T15:04:05.123456789Z) or Unix nanoseconds")
	}
	if t.Year() < 1970 || t.Year() > 2261 {
		return 0, errors.New("want a time from 1970 to 2261")
	}
	return t.UnixNano(), nil
}

// vmLookup reads the VM's record and whether the node at --addr owns it.
// A VM without a record gives nil and no error.
func vmLookup(ctx context.Context, cc *clientConn, vm string) (*clockdv1.VMClockResponse, error) {
	var resp *clockdv1.VMClockResponse
	err := cc.call(ctx, func(ctx context.Context) (err error) {
		resp, err = cc.Migration().VMClock(ctx, &clockdv1.VMClockRequest{Vm: vm})
		return err
	})
	if grpcstatus.Code(err) == codes.NotFound {
		return nil, nil
	}
	return resp, err
}

func vmFrozen(r *clockdv1.VMRecord) bool { return r.GetState() == clockdv1.VMState_VM_STATE_FROZEN }

// vmFreezeToken is the fencing token and time a freeze sends.
type vmFreezeToken struct {
	owner, gen uint64
	vmTime     *int64
}

func vmFreeze(c *cli.Context) error {
	a, err := vmParseArgs(c)
	if err != nil {
		return err
	}
	var tok vmFreezeToken
	if c.IsSet("vm-time") {
		ns, err := vmParseTime(c.String("vm-time"))
		if err != nil {
			return clientUsage(c, "--vm-time %q: %v", c.String("vm-time"), err)
		}
		tok.vmTime = &ns
	}
	gen, genSet, err := vmGeneration(c)
	if err != nil {
		return err
	}
	ifOwner, ownerSet := c.Bool("if-owner"), c.IsSet("owner")
	if ifOwner && ownerSet {
		return clientUsage(c, "--if-owner and --owner do not mix: --if-owner freezes as the owner it finds")
	}
	tok.owner, tok.gen = c.Uint64("owner"), gen
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	if !ownerSet || !genSet || tok.vmTime == nil || ifOwner {
		done, err := vmFreezeLookup(c, cc, a.vm, &tok, ownerSet, genSet, ifOwner)
		if done || err != nil {
			return err
		}
	}
	rid := a.requestID
	if rid == "" {
		rid = vmRequestID("freeze", a.vm, tok.gen)
	}
	var rec *clockdv1.VMRecord
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		rec, err = cc.Migration().Freeze(ctx, &clockdv1.FreezeRequest{Vm: a.vm, VmTimeUnixNano: tok.vmTime,
			Owner: tok.owner, Generation: tok.gen, RequestId: rid})
		return err
	})
	if err != nil {
		return vmError(c, cc, err)
	}
	return vmPrintRecord(c, rec)
}

// vmFreezeLookup fills in the token from the record. done reports that
// the command has finished without a freeze: the VM is not this node's
// (--if-owner), or it is already frozen at the token.
func vmFreezeLookup(c *cli.Context, cc *clientConn, vm string, tok *vmFreezeToken, ownerSet, genSet, ifOwner bool) (done bool, err error) {
	resp, err := vmLookup(c.Context, cc, vm)
	if err != nil {
		return true, vmError(c, cc, err)
	}
	note := func(format string, args ...any) {
		fmt.Fprintf(c.App.ErrWriter, clientCommandPath(c)+": "+format+"\n", args...)
	}
	switch {
	case resp == nil && ifOwner:
		note("VM %q has no record: nothing to freeze", vm)
		return true, nil
	case resp == nil:
		return true, clientFailed(c, "unknown VM %q (clockd vm list shows the VMs the cluster knows)", vm)
	case ifOwner && !resp.GetServed():
		note("VM %q belongs to host %d, not to the node at %s: nothing to freeze here", vm, resp.GetOwner(), cc.addr)
		return true, nil
	}
	rec := resp.GetRecord()
	if !ownerSet {
		tok.owner = rec.GetOwner()
	}
	if !genSet {
		tok.gen = rec.GetGeneration()
	}
	if tok.vmTime != nil {
		return false, nil // the server compares the time with a frozen floor
	}
	current := (tok.owner == rec.GetOwner() || tok.owner == 0 && resp.GetServed()) && tok.gen == rec.GetGeneration()
	if !current {
		return true, clientFailed(c, "failed precondition: VM %q is owned by host %d at generation %d; %s at generation %d may not freeze it",
			vm, rec.GetOwner(), rec.GetGeneration(), vmHostWords(tok.owner, cc.addr), tok.gen)
	}
	if vmFrozen(rec) {
		note("VM %q is already frozen at generation %d", vm, rec.GetGeneration())
		return true, vmPrintRecord(c, rec)
	}
	return false, nil
}

// vmHostWords names a fencing token's owner, 0 being the node at addr.
func vmHostWords(owner uint64, addr string) string {
	if owner == 0 {
		return "the node at " + addr
	}
	return "host " + strconv.FormatUint(owner, 10)
}

// vmResumeArgs are resume's checked flags.
type vmResumeArgs struct {
	vmArgs
	gen     uint64
	genSet  bool
	wait    time.Duration
	slewPPM *int64
	lagNs   *int64
}

func vmParseResume(c *cli.Context) (vmResumeArgs, error) {
	var r vmResumeArgs
	var err error
	if r.vmArgs, err = vmParseArgs(c); err != nil {
		return r, err
	}
	if r.gen, r.genSet, err = vmGeneration(c); err != nil {
		return r, err
	}
	if c.IsSet("max-slew-ppm") {
		ppm := c.Int64("max-slew-ppm")
		if ppm < 1 || ppm > 999_999 {
			return r, clientUsage(c, "--max-slew-ppm %d: want 1 to 999999", ppm)
		}
		r.slewPPM = &ppm
	}
	if c.IsSet("max-lag") {
		lag := c.Duration("max-lag")
		if lag < 0 {
			return r, clientUsage(c, "--max-lag %v: want 0 or more", lag)
		}
		ns := int64(lag)
		r.lagNs = &ns
	}
	if r.wait = c.Duration("wait"); r.wait < 0 {
		return r, clientUsage(c, "--wait %v: want 0 or more", r.wait)
	}
	return r, nil
}

func vmResume(c *cli.Context) error {
	r, err := vmParseResume(c)
	if err != nil {
		return err
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !r.genSet || r.wait > 0 {
		done, err := vmResumeLookup(ctx, c, cc, &r)
		if done || err != nil {
			return err
		}
	}
	rid := r.requestID
	if rid == "" {
		rid = vmRequestID("resume", r.vm, r.gen)
	}
	var rec *clockdv1.VMRecord
	err = cc.call(ctx, func(ctx context.Context) (err error) {
		rec, err = cc.Migration().Resume(ctx, &clockdv1.ResumeRequest{Vm: r.vm, Generation: r.gen, RequestId: rid,
			MaxSlewPpm: r.slewPPM, MaxLagNanos: r.lagNs})
		return err
	})
	if err != nil {
		return vmError(c, cc, err)
	}
	return vmPrintRecord(c, rec)
}

// vmResumeLookup reads the record, waits for another owner's freeze
// under --wait, and fills in the generation. done reports that the
// command has finished without a resume: the VM already runs here.
func vmResumeLookup(ctx context.Context, c *cli.Context, cc *clientConn, r *vmResumeArgs) (done bool, err error) {
	resp, err := vmLookup(ctx, cc, r.vm)
	if err != nil {
		return true, vmError(c, cc, err)
	}
	if r.wait > 0 && vmRunsElsewhere(resp) {
		if resp, err = vmWaitFrozen(ctx, c, cc, r.vm, r.wait, resp); err != nil {
			return true, err
		}
	}
	if r.genSet {
		return false, nil
	}
	rec := resp.GetRecord()
	switch {
	case resp == nil:
		r.gen = 1
	case vmFrozen(rec):
		r.gen = rec.GetGeneration() + 1
	case resp.GetServed():
		fmt.Fprintf(c.App.ErrWriter, "%s: VM %q already runs on the node at %s (generation %d)\n",
			clientCommandPath(c), r.vm, cc.addr, rec.GetGeneration())
		return true, vmPrintRecord(c, rec)
	default:
		return true, clientFailed(c, "failed precondition: VM %q runs on host %d at generation %d: freeze it there first, or pass --wait",
			r.vm, rec.GetOwner(), rec.GetGeneration())
	}
	return false, nil
}

// vmRunsElsewhere: the VM is running on a host other than the node asked.
func vmRunsElsewhere(resp *clockdv1.VMClockResponse) bool {
	return resp != nil && !resp.GetServed() && !vmFrozen(resp.GetRecord())
}

// vmWaitFrozen reads the record every vmWaitPollInterval until the VM no
// longer runs on another host, for at most wait. The node at --addr being
// briefly unreachable (a restart) does not end the wait.
func vmWaitFrozen(ctx context.Context, c *cli.Context, cc *clientConn, vm string, wait time.Duration,
	resp *clockdv1.VMClockResponse) (*clockdv1.VMClockResponse, error) {
	rec := resp.GetRecord()
	fmt.Fprintf(c.App.ErrWriter, "%s: VM %q runs on host %d at generation %d: waiting up to %v for its freeze\n",
		clientCommandPath(c), vm, rec.GetOwner(), rec.GetGeneration(), wait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for vmRunsElsewhere(resp) {
		select {
		case <-ctx.Done():
			return nil, clientFailed(c, "interrupted while waiting for host %d to freeze VM %q", rec.GetOwner(), vm)
		case <-deadline.C:
			return nil, clientFailed(c, "VM %q still runs on host %d after --wait %v: it was not frozen there", vm, rec.GetOwner(), wait)
		case <-time.After(vmWaitPollInterval):
		}
		next, err := vmLookup(ctx, cc, vm)
		switch grpcstatus.Code(err) {
		case codes.OK:
			if next == nil {
				return nil, clientFailed(c, "VM %q was released while waiting for its freeze", vm)
			}
			resp, rec = next, next.GetRecord()
		case codes.Unavailable, codes.DeadlineExceeded:
		default:
			if ctx.Err() == nil {
				return nil, vmError(c, cc, err)
			}
		}
	}
	return resp, nil
}

func vmStatus(c *cli.Context) error {
	a, err := vmParseArgs(c)
	if err != nil {
		return err
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var resp *clockdv1.VMClockResponse
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		resp, err = cc.Migration().VMClock(ctx, &clockdv1.VMClockRequest{Vm: a.vm})
		return err
	})
	if err != nil {
		return vmError(c, cc, err)
	}
	if c.Bool("json") {
		return clientPrintJSON(c.App.Writer, vmStatusToJSON(resp), false)
	}
	vmStatusPrint(c.App.Writer, resp, cc.addr)
	return nil
}

func vmList(c *cli.Context) error {
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var resp *clockdv1.ListResponse
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		resp, err = cc.Migration().List(ctx, &clockdv1.ListRequest{})
		return err
	})
	if err != nil {
		return vmError(c, cc, err)
	}
	if c.Bool("json") {
		out := vmListJSON{VMs: make([]vmRecordJSON, 0, len(resp.GetVms()))}
		for _, r := range resp.GetVms() {
			out.VMs = append(out.VMs, vmRecordToJSON(r))
		}
		return clientPrintJSON(c.App.Writer, out, false)
	}
	if len(resp.GetVms()) == 0 {
		fmt.Fprintln(c.App.Writer, "no VMs")
		return nil
	}
	return vmListTable(c.App.Writer, resp.GetVms())
}

func vmRelease(c *cli.Context) error {
	a, err := vmParseArgs(c)
	if err != nil {
		return err
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	rid := a.requestID
	if rid == "" {
		rid = vmRequestID("release", a.vm, 0)
	}
	err = cc.call(c.Context, func(ctx context.Context) error {
		_, err := cc.Migration().Release(ctx, &clockdv1.ReleaseRequest{Vm: a.vm, RequestId: rid})
		return err
	})
	if err != nil {
		return vmError(c, cc, err)
	}
	fmt.Fprintf(c.App.Writer, "released VM %s\n", a.vm)
	return nil
}

// vmError is clientError with the words of the migration API: the
// server's messages name the VM, the owner and the generation, so they
// are shown as they are, with a hint where one helps.
func vmError(c *cli.Context, cc *clientConn, err error) error {
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return clientError(c, cc, "", err)
	}
	msg := st.Message()
	switch st.Code() {
	case codes.NotFound:
		return clientFailed(c, "%s (clockd vm list shows the VMs the cluster knows)", msg)
	case codes.FailedPrecondition:
		return clientFailed(c, "failed precondition: %s", msg)
	case codes.PermissionDenied:
		return clientFailed(c, "permission denied: %s (freeze, resume and release take the owning host's node "+
			"certificate, --tls-cert /etc/clockd/tls/node.pem, or the admin certificate)", msg)
	case codes.InvalidArgument:
		if strings.Contains(msg, "vm_time_unix_nano is required") {
			return clientFailed(c, "invalid argument: %s (pass --vm-time; clockd vm status shows the owner)", msg)
		}
	}
	return clientError(c, cc, "", err)
}

// vmRecordJSON is a record in JSON; its field names are part of the CLI.
type vmRecordJSON struct {
	VM                string `json:"vm"`
	Owner             uint64 `json:"owner"`
	Generation        uint64 `json:"generation"`
	State             string `json:"state"`
	Floor             string `json:"floor"`
	FloorUnixNano     int64  `json:"floor_unix_nano,string"`
	ResumeRef         string `json:"resume_ref"`
	ResumeRefUnixNano int64  `json:"resume_ref_unix_nano,string"`
	MaxSlewPPM        int64  `json:"max_slew_ppm"`
	MaxLagNs          int64  `json:"max_lag_ns"`
}

type vmListJSON struct {
	VMs []vmRecordJSON `json:"vms"`
}

type vmStatusJSON struct {
	VM            string             `json:"vm"`
	Served        bool               `json:"served"`
	Owner         uint64             `json:"owner"`
	OwnerPeerAddr string             `json:"owner_peer_addr"`
	Reading       *clientReadingJSON `json:"reading"`
	LagNs         *int64             `json:"lag_ns"`
	Converged     *bool              `json:"converged"`
	Record        vmRecordJSON       `json:"record"`
}

func vmRecordToJSON(r *clockdv1.VMRecord) vmRecordJSON {
	return vmRecordJSON{VM: r.GetVm(), Owner: r.GetOwner(), Generation: r.GetGeneration(), State: vmState(r),
		Floor: clientTime(r.GetFloorUnixNano()), FloorUnixNano: r.GetFloorUnixNano(),
		ResumeRef: clientTime(r.GetResumeRefUnixNano()), ResumeRefUnixNano: r.GetResumeRefUnixNano(),
		MaxSlewPPM: r.GetMaxSlewPpm(), MaxLagNs: r.GetMaxLagNanos()}
}

func vmStatusToJSON(resp *clockdv1.VMClockResponse) vmStatusJSON {
	out := vmStatusJSON{VM: resp.GetRecord().GetVm(), Served: resp.GetServed(), Owner: resp.GetOwner(),
		OwnerPeerAddr: resp.GetOwnerPeerAddr(), Record: vmRecordToJSON(resp.GetRecord())}
	if resp.GetServed() {
		r := clientReading(resp.GetReading().VClock())
		lag, conv := resp.GetLagNanos(), resp.GetConverged()
		out.Reading, out.LagNs, out.Converged = &r, &lag, &conv
	}
	return out
}

// vmState is the state without the enum's prefix: RUNNING, FROZEN.
func vmState(r *clockdv1.VMRecord) string {
	return strings.TrimPrefix(r.GetState().String(), "VM_STATE_")
}

// vmPrintRecord prints a record as fields, or as JSON under --json.
func vmPrintRecord(c *cli.Context, r *clockdv1.VMRecord) error {
	if c.Bool("json") {
		return clientPrintJSON(c.App.Writer, vmRecordToJSON(r), false)
	}
	clientFields(c.App.Writer, vmRecordFields(r, ""))
	return nil
}

// vmRecordFields are a record's "Name : value" lines; ownerNote follows
// the owner's id.
func vmRecordFields(r *clockdv1.VMRecord, ownerNote string) []clientField {
	return []clientField{
		{"VM", r.GetVm()},
		{"Owner", "host " + strconv.FormatUint(r.GetOwner(), 10) + ownerNote},
		{"Generation", strconv.FormatUint(r.GetGeneration(), 10)},
		{"State", vmState(r)},
		{"Floor", clientTime(r.GetFloorUnixNano())},
		{"Resume ref", clientTime(r.GetResumeRefUnixNano())},
		{"Policy", vmPolicy(r)},
	}
}

// vmPolicy is "max slew 500 ppm, max lag 1s"; a max lag of 0 never steps.
func vmPolicy(r *clockdv1.VMRecord) string {
	lag := "never steps"
	if ns := r.GetMaxLagNanos(); ns > 0 {
		lag = "max lag " + time.Duration(ns).String()
	}
	return fmt.Sprintf("max slew %d ppm, %s", r.GetMaxSlewPpm(), lag)
}

// vmLag is the reference minus the VM clock, signed, in words.
func vmLag(lagNs int64) string {
	d := time.Duration(lagNs)
	switch {
	case d > 0:
		return fmt.Sprintf("+%v (VM clock behind the reference)", d)
	case d < 0:
		return fmt.Sprintf("%v (VM clock ahead of the reference)", d)
	}
	return "0s"
}

func vmStatusPrint(w io.Writer, resp *clockdv1.VMClockResponse, addr string) {
	rec := resp.GetRecord()
	if !resp.GetServed() {
		peer := resp.GetOwnerPeerAddr()
		if peer == "" {
			peer = "unknown to this node"
		}
		fmt.Fprintf(w, "The node at %s does not own VM %s: host %d does (peer address %s); its clock is read there.\n\n",
			addr, rec.GetVm(), resp.GetOwner(), peer)
		clientFields(w, vmRecordFields(rec, ""))
		return
	}
	r := resp.GetReading().VClock()
	earliest, latest := "unbounded", "unbounded"
	if r.Bounded() {
		earliest, latest = clientTime(r.Earliest), clientTime(r.Latest)
	}
	lag, converged := vmLag(resp.GetLagNanos()), "no"
	if resp.GetConverged() {
		converged = "yes"
	}
	if vmFrozen(rec) {
		lag, converged = "none: frozen, the clock stands at its floor until resumed", "no"
	}
	fields := []clientField{
		{"Time", clientTime(r.Time)},
		{"Earliest", earliest},
		{"Latest", latest},
		{"Uncertainty", clientUncertainty(r)},
		{"Status", r.Status.String()},
		{"Lag", lag},
		{"Converged", converged},
	}
	fields = append(fields, vmRecordFields(rec, " (the node at "+addr+")")[1:]...) // the VM was named on the command line
	clientFields(w, fields)
}

func vmListTable(w io.Writer, vms []*clockdv1.VMRecord) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tOWNER\tGEN\tSTATE\tFLOOR\tRESUME REF\tPOLICY")
	for _, r := range vms {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.GetVm(), r.GetOwner(), r.GetGeneration(), vmState(r),
			clientTime(r.GetFloorUnixNano()), clientTime(r.GetResumeRefUnixNano()), vmPolicy(r))
	}
	return tw.Flush()
}
