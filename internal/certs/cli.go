package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

const (
	day = 24 * time.Hour
	// maxDays keeps validities far from time.Duration's limit.
	maxDays = 100 * 365
)

// Command is `certs` with its subcommand `init`.
func Command() *cli.Command {
	return &cli.Command{
		Name:        "certs",
		Usage:       "make a development CA and the cluster's certificates",
		Subcommands: []*cli.Command{initCommand()},
	}
}

func initCommand() *cli.Command {
	env := func(name string) []string { return []string{"CLOCKD_CERTS_" + name} }
	return &cli.Command{
		Name:      "init",
		Usage:     "issue certificates for nodes, hosts, VMs and the admin, making the CA if needed",
		UsageText: "clockd certs init --dir DIR [--nodes 1,2,3] [--hosts a,b] [--vms 7,8] [--admin] [options]",
		Description: "Writes PEM files into --dir: ca.pem and ca-key.pem, then NAME.pem and\n" +
			"NAME-key.pem for each certificate (keys mode 0600). Node N gets DNS names node-N\n" +
			"and localhost, IPs 127.0.0.1 and ::1, and serves TLS; peers dial it as node-N.\n" +
			"Hosts, VMs and the admin get client certificates whose URI names carry their\n" +
			"roles (clockd:host, clockd:vm:ID, clockd:admin).\n\n" +
			"A valid CA already in --dir is reused, so a node added later gets a certificate\n" +
			"its peers trust: run init again with only the new --nodes. Existing files are\n" +
			"never replaced without --force; --force never replaces a valid CA (remove\n" +
			"ca.pem and ca-key.pem to start a new one). Keep ca-key.pem off the hosts.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "`DIR` to write into, created (mode 0700) if missing", EnvVars: env("DIR")},
			&cli.StringSliceFlag{Name: "nodes", Usage: "node `IDS`, comma-separated, e.g. 1,2,3", EnvVars: env("NODES")},
			&cli.StringSliceFlag{Name: "hosts", Usage: "host `NAMES` for host client certificates, e.g. hv1,hv2", EnvVars: env("HOSTS")},
			&cli.StringSliceFlag{Name: "vms", Usage: "VM `IDS` for VM client certificates, e.g. 7,8", EnvVars: env("VMS")},
			&cli.BoolFlag{Name: "admin", Usage: "issue the admin client certificate", EnvVars: env("ADMIN")},
			&cli.BoolFlag{Name: "force", Usage: "replace existing certificates and keys, and an unusable CA", EnvVars: env("FORCE")},
			&cli.StringSliceFlag{Name: "node-dns", Usage: "extra DNS name for a node, `ID=NAME`, e.g. 1=hv1.example.com", EnvVars: env("NODE_DNS")},
			&cli.StringSliceFlag{Name: "node-ip", Usage: "extra IP address for a node, `ID=IP`, e.g. 1=192.0.2.1", EnvVars: env("NODE_IP")},
			&cli.IntFlag{Name: "days", Value: int(DefaultLeafValidity / day), Usage: "validity of each certificate in `DAYS`, cut to the CA's", EnvVars: env("DAYS")},
			&cli.IntFlag{Name: "ca-days", Value: int(DefaultCAValidity / day), Usage: "validity of a new CA in `DAYS`", EnvVars: env("CA_DAYS")},
			&cli.BoolFlag{Name: "json", Usage: "print what was written as JSON", EnvVars: env("JSON")},
		},
		Action: runInit,
	}
}

func runInit(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("unexpected argument %q: every input is a flag", c.Args().First())
	}
	spec, err := specFromFlags(c)
	if err != nil {
		return err
	}
	files, err := Init(c.String("dir"), spec)
	switch {
	case errors.Is(err, ErrExists):
		return fmt.Errorf("%w; pass --force to replace it", err)
	case errors.Is(err, ErrUnusableCA):
		return fmt.Errorf("%w; pass --force to make a new CA, which every certificate must then be reissued from", err)
	case err != nil:
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(files)
	}
	printFiles(c.App.Writer, files)
	return nil
}

// specFromFlags checks each flag value on its own, so that an error names
// the flag and the value at fault.
func specFromFlags(c *cli.Context) (Spec, error) {
	spec := Spec{Admin: c.Bool("admin"), Force: c.Bool("force"), Hosts: c.StringSlice("hosts"), VMs: c.StringSlice("vms")}
	var err error
	if spec.LeafValidity, err = days(c, "days"); err != nil {
		return Spec{}, err
	}
	if spec.CAValidity, err = days(c, "ca-days"); err != nil {
		return Spec{}, err
	}
	if spec.Nodes, err = parseNodes(c.StringSlice("nodes")); err != nil {
		return Spec{}, err
	}
	if err := addNodeNames(spec.Nodes, c.StringSlice("node-dns"), c.StringSlice("node-ip")); err != nil {
		return Spec{}, err
	}
	for _, h := range spec.Hosts {
		if err := checkDNSName(h); err != nil {
			return Spec{}, fmt.Errorf("--hosts %q: %v", h, err)
		}
	}
	for _, id := range spec.VMs {
		if err := checkVMID(id); err != nil {
			return Spec{}, fmt.Errorf("--vms %q: %v", id, err)
		}
	}
	return spec, nil
}

func days(c *cli.Context, flag string) (time.Duration, error) {
	n := c.Int(flag)
	if n < 1 || n > maxDays {
		return 0, fmt.Errorf("--%s %d: want 1 to %d", flag, n, maxDays)
	}
	return time.Duration(n) * day, nil
}

func parseNodes(vals []string) ([]Node, error) {
	var nodes []Node
	seen := make(map[uint64]bool)
	for _, v := range vals {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--nodes %q: not a node id (want a positive integer)", v)
		}
		if seen[id] {
			return nil, fmt.Errorf("--nodes: %d is listed twice", id)
		}
		seen[id] = true
		nodes = append(nodes, Node{ID: id})
	}
	return nodes, nil
}

// addNodeNames adds --node-dns and --node-ip values, ID=VALUE each, to
// the nodes they name.
func addNodeNames(nodes []Node, dns, ips []string) error {
	find := func(flag, v, example string) (*Node, string, error) {
		idText, value, ok := strings.Cut(v, "=")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || value == "" {
			return nil, "", fmt.Errorf("--%s %q: want ID=VALUE, e.g. %s", flag, v, example)
		}
		for i := range nodes {
			if nodes[i].ID == id {
				return &nodes[i], value, nil
			}
		}
		return nil, "", fmt.Errorf("--%s %q: node %d is not in --nodes", flag, v, id)
	}
	for _, v := range dns {
		n, name, err := find("node-dns", v, "1=hv1.example.com")
		if err != nil {
			return err
		}
		if err := checkDNSName(name); err != nil {
			return fmt.Errorf("--node-dns %q: %v", v, err)
		}
		n.DNSNames = append(n.DNSNames, name)
	}
	for _, v := range ips {
		n, text, err := find("node-ip", v, "1=192.0.2.1")
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(text)
		if err != nil || ip.Zone() != "" {
			return fmt.Errorf("--node-ip %q: %q is not an IP address without a zone", v, text)
		}
		n.IPs = append(n.IPs, ip)
	}
	return nil
}

func printFiles(w io.Writer, f Files) {
	until := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	verb := "created"
	if f.CAReused {
		verb = "reused"
	}
	fmt.Fprintf(w, "%s CA %s (key %s), valid until %s\n", verb, f.CA, f.CAKey, until(f.CANotAfter))
	for _, l := range f.Leaves {
		var names []string
		for _, d := range l.DNSNames {
			names = append(names, "DNS:"+d)
		}
		for _, ip := range l.IPs {
			names = append(names, "IP:"+ip.String())
		}
		for _, u := range l.URIs {
			names = append(names, "URI:"+u)
		}
		use := "client"
		if l.Server {
			use = "server and client"
		}
		fmt.Fprintf(w, "wrote %s: %s, %s\n  %s\n  %s, valid until %s\n", l.Name, l.Cert, l.Key, strings.Join(names, " "), use, until(l.NotAfter))
	}
	if len(f.Leaves) == 0 {
		fmt.Fprintln(w, "no certificates requested: pass --nodes, --hosts, --vms or --admin")
	}
}
