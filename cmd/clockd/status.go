package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/api/clockdv1"
)

func statusCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "status",
		Usage:     "show a node's consensus and clock state, like chronyc tracking",
		UsageText: "clockd status [--addr HOST:PORT] [--json] [connection options]",
		Description: "Prints the node's id and role, the leader it knows, the highest ballot it has\n" +
			"promised (round.node), the members, its reading of the reference clock with\n" +
			"its uncertainty and status, how far the host's wall clock is from the reference\n" +
			"(host wall clock minus reference; \"fast\": ahead of it), the estimated rate error\n" +
			"of its monotonic clock in ppm, the members named falsetickers, the last tick it\n" +
			"applied, its commit and applied log slots, and its clockd version.\n\n" +
			"--json prints one object: node_id, role (LEADER, FOLLOWER, CANDIDATE), leader_id\n" +
			"(0: none known), ballot {round, node}, members [{id, addr, learner}],\n" +
			"config_slot, reference (a reading as clockd now --json prints it),\n" +
			"local_offset_ns, drift_ppb, falsetickers [ids], last_tick_seq,\n" +
			"last_tick_age_ns (null: no tick applied yet), commit_slot, applied_slot, version\n" +
			"(the node's clockd version).",
		Action: statusAction,
	}, true)
}

func statusAction(c *cli.Context) error {
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var st *clockdv1.StatusResponse
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		st, err = cc.Status(ctx)
		return err
	})
	if err != nil {
		return clientError(c, cc, "", err)
	}
	if c.Bool("json") {
		return clientPrintJSON(c.App.Writer, statusToJSON(st), false)
	}
	statusPrint(c.App.Writer, st)
	return nil
}

// statusJSON is the --json object; its field names are part of the CLI.
type statusJSON struct {
	NodeID        uint64              `json:"node_id"`
	Role          string              `json:"role"`
	LeaderID      uint64              `json:"leader_id"`
	Ballot        statusBallotJSON    `json:"ballot"`
	Members       []membersMemberJSON `json:"members"`
	ConfigSlot    uint64              `json:"config_slot"`
	Reference     clientReadingJSON   `json:"reference"`
	LocalOffsetNs int64               `json:"local_offset_ns"`
	DriftPPB      int64               `json:"drift_ppb"`
	Falsetickers  []uint64            `json:"falsetickers"`
	LastTickSeq   uint64              `json:"last_tick_seq"`
	LastTickAgeNs *int64              `json:"last_tick_age_ns"`
	CommitSlot    uint64              `json:"commit_slot"`
	AppliedSlot   uint64              `json:"applied_slot"`
	Version       string              `json:"version"`
	Events        statusEventsJSON    `json:"events"`
}

// statusEventsJSON is the host's ordered event log: dropped and refused
// count since the node started.
type statusEventsJSON struct {
	LastGSN uint64 `json:"last_gsn"`
	Spooled uint64 `json:"spooled"`
	Dropped uint64 `json:"dropped"`
	Refused uint64 `json:"refused"`
}

type statusBallotJSON struct {
	Round uint64 `json:"round"`
	Node  uint64 `json:"node"`
}

func statusToJSON(st *clockdv1.StatusResponse) statusJSON {
	out := statusJSON{
		NodeID:        st.GetNodeId(),
		Role:          statusRole(st.GetRole()),
		LeaderID:      st.GetLeaderId(),
		Ballot:        statusBallotJSON{Round: st.GetBallot().GetRound(), Node: st.GetBallot().GetNode()},
		Members:       membersToJSON(st.GetMembers()),
		ConfigSlot:    st.GetConfigSlot(),
		Reference:     clientReading(st.GetReference().VClock()),
		LocalOffsetNs: st.GetLocalOffsetNanos(),
		DriftPPB:      st.GetDriftPpb(),
		Falsetickers:  append([]uint64{}, st.GetFalsetickers()...), // [] rather than null
		LastTickSeq:   st.GetLastTickSeq(),
		CommitSlot:    st.GetCommitSlot(),
		AppliedSlot:   st.GetAppliedSlot(),
		Version:       st.GetVersion(),
		Events: statusEventsJSON{LastGSN: st.GetEventsLastGsn(), Spooled: st.GetEventsSpooled(),
			Dropped: st.GetEventsDropped(), Refused: st.GetEventsRefused()},
	}
	if age := st.GetLastTickAgeNanos(); age >= 0 {
		out.LastTickAgeNs = &age
	}
	return out
}

// statusRole is the role without the enum's prefix: LEADER.
func statusRole(r clockdv1.Role) string {
	return strings.TrimPrefix(r.String(), "ROLE_")
}

// statusPrint writes the aligned "Name : value" report.
func statusPrint(w io.Writer, st *clockdv1.StatusResponse) {
	ref := st.GetReference().VClock()
	leader := "none known"
	if id := st.GetLeaderId(); id != 0 {
		leader = fmt.Sprint(id)
		if id == st.GetNodeId() {
			leader += " (this node)"
		}
	}
	lastTick := "none applied yet"
	if age := st.GetLastTickAgeNanos(); age >= 0 {
		lastTick = fmt.Sprintf("#%d, %v ago", st.GetLastTickSeq(), time.Duration(age))
	}
	clientFields(w, []clientField{
		{"Node ID", fmt.Sprint(st.GetNodeId())},
		{"Role", strings.ToLower(statusRole(st.GetRole()))},
		{"Leader", leader},
		{"Ballot", fmt.Sprintf("%d.%d", st.GetBallot().GetRound(), st.GetBallot().GetNode())},
		{"Members", statusMembers(st.GetMembers())},
		{"Reference time", clientTime(ref.Time)},
		{"Uncertainty", clientUncertainty(ref)},
		{"Status", ref.Status.String()},
		{"Local offset", statusOffset(st.GetLocalOffsetNanos())},
		{"Drift", statusDrift(st.GetDriftPpb())},
		{"Falsetickers", statusIDs(st.GetFalsetickers())},
		{"Last tick", lastTick},
		{"Commit slot", fmt.Sprint(st.GetCommitSlot())},
		{"Applied slot", fmt.Sprint(st.GetAppliedSlot())},
		{"Events", fmt.Sprintf("last GSN %d, %d spooled; since start %d dropped (spool full), %d refused",
			st.GetEventsLastGsn(), st.GetEventsSpooled(), st.GetEventsDropped(), st.GetEventsRefused())},
		{"Version", st.GetVersion()},
	})
}

// statusOffset is the host's wall clock minus the reference, signed.
func statusOffset(offsetNs int64) string {
	d := time.Duration(offsetNs)
	switch {
	case d > 0:
		return fmt.Sprintf("+%v (wall clock fast of the reference)", d)
	case d < 0:
		return fmt.Sprintf("%v (wall clock slow of the reference)", d)
	}
	return "0s"
}

// statusDrift is the monotonic clock's rate error in ppm (from ppb).
func statusDrift(driftPPB int64) string {
	ppm := fmt.Sprintf("%+.3f ppm", float64(driftPPB)/1000)
	switch {
	case driftPPB > 0:
		return ppm + " (monotonic clock fast)"
	case driftPPB < 0:
		return ppm + " (monotonic clock slow)"
	}
	return ppm
}

func statusMembers(ms []*clockdv1.Member) string {
	if len(ms) == 0 {
		return "none"
	}
	return strings.TrimSuffix(membersTable(ms, false), "\n")
}

func statusIDs(ids []uint64) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}
