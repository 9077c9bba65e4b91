package main

import (
	"bytes"
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/api/clockdv1"
)

// membersPollInterval is how often `members transfer` asks the node who
// leads while it waits for the transfer to show.
const membersPollInterval = 50 * time.Millisecond

// The flags naming the member a change is about have no CLOCKD_*
// variables: a variable left set in a shell must not choose the node that
// is removed or made leader.
func membersIDFlag(usage string) cli.Flag {
	return &cli.Uint64Flag{Name: "id", Usage: usage}
}

func membersCommand() *cli.Command {
	return commandGroup(&cli.Command{
		Name:  "members",
		Usage: "list and change the cluster's members, and move the leadership",
		Description: "Changes go to any member: it forwards them to the leader. Changes need the admin\n" +
			"certificate; list needs any client certificate.",
		Subcommands: []*cli.Command{membersListCommand(), membersAddCommand(), membersRemoveCommand(), membersTransferCommand()},
	})
}

func membersListCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "list",
		Usage:     "show the active configuration, and the one a change in flight moves to",
		UsageText: "clockd members list [--json] [connection options]",
		Description: "--json prints one object: members [{id, addr, learner}], config_slot (the log\n" +
			"slot that chose the configuration; 0 for the bootstrap one) and pending (the\n" +
			"members a change in flight moves to; [] when none is).",
		Action: membersList,
	}, true)
}

func membersAddCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "add",
		Usage:     "add a node to the cluster",
		UsageText: "clockd members add --id N --peer-addr HOST:PORT [--learner] [connection options]",
		Description: "The node must then be started with join pointing at a member. A voter joins as\n" +
			"a learner and becomes a voter once it has caught up, so adding it never stalls\n" +
			"the quorum; --learner keeps it a learner. --peer-addr is the node's peer address\n" +
			"(its peer_advertise), not its API address.\n\n" +
			"A node started with join is also admitted without this command, as a voter, when\n" +
			"its certificate is a node certificate of the cluster's CA for its ID; with\n" +
			"--insecure (test clusters only), any node that reaches a peer port is. add is for\n" +
			"a learner, or to admit the node before it starts.",
		Flags: []cli.Flag{
			membersIDFlag("the new node's `ID`, 1 or more, unique in the cluster"),
			&cli.StringFlag{Name: "peer-addr", Usage: "`HOST:PORT` the members dial the new node's peer port at"},
			&cli.BoolFlag{Name: "learner", Usage: "keep the node a learner: it replicates and applies the log but never votes"},
		},
		Action: membersAdd,
	}, false)
}

func membersRemoveCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "remove",
		Usage:     "remove a node from the cluster",
		UsageText: "clockd members remove --id N [connection options]",
		Description: "The leader refuses when the remaining voters would not form a quorum. Removing\n" +
			"the leader hands its leadership on.",
		Flags:  []cli.Flag{membersIDFlag("the `ID` of the node to remove")},
		Action: membersRemove,
	}, false)
}

func membersTransferCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "transfer",
		Usage:     "hand the leadership to a member",
		UsageText: "clockd members transfer --id N [connection options]",
		Description: "Asks the leader to hand its leadership to the voter --id, then waits, up to\n" +
			"--timeout, until the node at --addr names it leader.",
		Flags:  []cli.Flag{membersIDFlag("the `ID` of the voter to lead")},
		Action: membersTransfer,
	}, false)
}

// membersID is --id, which must be given and not 0.
func membersID(c *cli.Context) (uint64, error) {
	if !c.IsSet("id") {
		return 0, clientUsage(c, "--id is required")
	}
	id := c.Uint64("id")
	if id == 0 {
		return 0, clientUsage(c, "--id 0: want a node id of 1 or more")
	}
	return id, nil
}

func membersList(c *cli.Context) error {
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var resp *clockdv1.MembersResponse
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		resp, err = cc.Members(ctx)
		return err
	})
	if err != nil {
		return clientError(c, cc, "", err)
	}
	if c.Bool("json") {
		return clientPrintJSON(c.App.Writer, membersListJSON{
			Members:    membersToJSON(resp.GetMembers()),
			ConfigSlot: resp.GetConfigSlot(),
			Pending:    membersToJSON(resp.GetPending()),
		}, false)
	}
	w := c.App.Writer
	fmt.Fprint(w, membersTable(resp.GetMembers(), true))
	if s := resp.GetConfigSlot(); s != 0 {
		fmt.Fprintf(w, "\nchosen at log slot %d\n", s)
	}
	if len(resp.GetPending()) > 0 {
		fmt.Fprintf(w, "\na change is in flight to:\n%s", membersTable(resp.GetPending(), true))
	}
	return nil
}

func membersAdd(c *cli.Context) error {
	id, err := membersID(c)
	if err != nil {
		return err
	}
	addr := c.String("peer-addr")
	if addr == "" {
		return clientUsage(c, "--peer-addr is required")
	}
	if err := clientCheckAddr(addr); err != nil {
		return clientUsage(c, "--peer-addr %q: %v", addr, err)
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	learner := c.Bool("learner")
	err = cc.call(c.Context, func(ctx context.Context) error { return cc.AddMember(ctx, id, addr, learner) })
	if err != nil {
		return clientError(c, cc, fmt.Sprintf("add node %d", id), err)
	}
	as := "a voter once it has caught up (a learner until then)"
	if learner {
		as = "a learner"
	}
	fmt.Fprintf(c.App.Writer, "added node %d at %s as %s\n", id, addr, as)
	return nil
}

func membersRemove(c *cli.Context) error {
	id, err := membersID(c)
	if err != nil {
		return err
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	err = cc.call(c.Context, func(ctx context.Context) error { return cc.RemoveMember(ctx, id) })
	if err != nil {
		return clientError(c, cc, fmt.Sprintf("remove node %d", id), err)
	}
	fmt.Fprintf(c.App.Writer, "removed node %d\n", id)
	return nil
}

func membersTransfer(c *cli.Context) error {
	id, err := membersID(c)
	if err != nil {
		return err
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	what := fmt.Sprintf("transfer the leadership to node %d", id)
	err = cc.call(c.Context, func(ctx context.Context) error { return cc.TransferLeader(ctx, id) })
	if err != nil {
		return clientError(c, cc, what, err)
	}
	ctx, cancel := context.WithTimeout(c.Context, cc.timeout)
	defer cancel()
	var leader uint64
	for {
		st, err := cc.Status(ctx)
		if err == nil && st.GetLeaderId() == id {
			fmt.Fprintf(c.App.Writer, "node %d leads now\n", id)
			return nil
		}
		if err == nil {
			leader = st.GetLeaderId()
		}
		select {
		case <-ctx.Done():
			return clientFailed(c, "%s: the old leader stepped down, but after --timeout %v node %s names leader %d (0: none)",
				what, cc.timeout, cc.addr, leader)
		case <-time.After(membersPollInterval):
		}
	}
}

// membersMemberJSON is a member in JSON; its field names are part of the CLI.
type membersMemberJSON struct {
	ID      uint64 `json:"id"`
	Addr    string `json:"addr"`
	Learner bool   `json:"learner"`
}

type membersListJSON struct {
	Members    []membersMemberJSON `json:"members"`
	ConfigSlot uint64              `json:"config_slot"`
	Pending    []membersMemberJSON `json:"pending"`
}

// membersToJSON never returns nil, so that an empty list prints as [].
func membersToJSON(ms []*clockdv1.Member) []membersMemberJSON {
	out := make([]membersMemberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, membersMemberJSON{ID: m.GetId(), Addr: m.GetAddr(), Learner: m.GetLearner()})
	}
	return out
}

// membersTable is one line per member, columns aligned, each line ending
// in a newline.
func membersTable(ms []*clockdv1.Member, header bool) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tPEER ADDRESS\tROLE")
	}
	for _, m := range ms {
		role := "voter"
		if m.GetLearner() {
			role = "learner"
		}
		addr := m.GetAddr()
		if addr == "" {
			addr = "-" // the server sent none, as for bootstrap members
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.GetId(), addr, role)
	}
	tw.Flush()
	return b.String()
}
