package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "merge trace files into one timeline, correcting each host's clock",
		UsageText: "tracecat merge [flags] FILE[:FORMAT]...",
		Description: "Reads every FILE (- is stdin, once), each in its own format: detected from its\n" +
			"first 8 KiB, or given by --format for all or by a :FORMAT suffix for one (jsonl,\n" +
			"journal, syslog, ftrace, otlp, chrome; -:jsonl is stdin in JSON lines). A FILE\n" +
			"whose name starts with '-' goes after --. A UTF-8 byte-order mark at the start\n" +
			"of a FILE or of the offsets file is skipped.\n\n" +
			"An event's host is the one its record names; for records that name none, the\n" +
			"--host FILE=HOST given for its file, else the file's name without its directory\n" +
			"and trace extensions (hv1.jsonl and hv1.trace.json are hv1). Names must match\n" +
			"the offsets' hosts.\n\n" +
			"--offsets reads the offset history `clockd offsets export` writes; each\n" +
			"host's timestamps are corrected by its offset interpolated between samples,\n" +
			"and before the first or after the last by that sample's. --offset\n" +
			"HOST=±DURATION sets a constant offset (the host's clock minus the reference:\n" +
			"hv2=+1.5ms moves hv2's events 1.5 ms earlier), replacing that host's history;\n" +
			"each host takes one --offset. Offsets beyond ±200 years are refused, and an\n" +
			"event whose corrected time would be past the years 1677-2262 that tracecat\n" +
			"can write keeps its own (correction-overflow). Events keep their file's order;\n" +
			"equal times are ordered by host, source, sequence and file.\n\n" +
			"At the end a summary goes to stderr: events per file, late events (earlier\n" +
			"than one before them in their file: written where their file has them), and\n" +
			"inconsistent events (no timestamp, no offsets for their host, an end without\n" +
			"a begin, ...: written and marked) and malformed records (skipped, with file\n" +
			"and line). It warns, per host, of events outside the host's offset history:\n" +
			"before its first sample or after its last by more than the largest gap\n" +
			"between its samples, or 1 minute if that is larger (corrected all the same);\n" +
			"and of every --offset whose HOST no event has (a typo?), listing the hosts\n" +
			"seen. --strict makes the first malformed record or inconsistent event fatal,\n" +
			"and an --offset whose HOST no event has. A progress bar goes to stderr when\n" +
			"it is a terminal and the inputs are large.\n\n" + exitHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "auto", EnvVars: env("FORMAT"),
				Usage: "`FORMAT` of every FILE without a :FORMAT suffix: auto, jsonl, journal, syslog, ftrace, otlp or chrome"},
			&cli.StringSliceFlag{Name: "host", EnvVars: env("HOST"),
				Usage: "`FILE=HOST`: the host of FILE's records that name none (repeatable)"},
			&cli.StringFlag{Name: "offsets", EnvVars: env("OFFSETS", "CLOCKD_OFFSETS"), TakesFile: true,
				Usage: "per-host clock-offset history `FILE` from clockd offsets export (JSON lines; offsets of at most ±200 years)"},
			&cli.StringSliceFlag{Name: "offset", EnvVars: env("OFFSET"),
				Usage: "`HOST=±DURATION`: a constant offset for HOST, e.g. hv2=+1.5ms, of at most ±200 years (repeatable, once per host)"},
			&cli.BoolFlag{Name: "strict", EnvVars: env("STRICT"),
				Usage: "fail at the first malformed record or inconsistent event instead of reporting it, and at an --offset whose HOST no event has"},
			&cli.BoolFlag{Name: "no-progress", EnvVars: env("NO_PROGRESS"),
				Usage: "never draw the progress bar"},
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, TakesFile: true,
				Usage: "write a CPU profile of the merge to `FILE` (go tool pprof)"},
		}, outputFlags()...),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			return commandErr(c, runMerge(c))
		},
	}
}

// mergeFile is one FILE argument.
type mergeFile struct {
	path   string // "-" for stdin
	format ingest.Format
	host   string // for records that name none
}

// mergeConfig is the merge command line, checked.
type mergeConfig struct {
	files   []mergeFile
	offsets *timeline.Offsets
	// manual holds the --offset flags, in the order given.
	manual []manualOffset
	strict bool
}

// manualOffset is one --offset flag: arg as given, and its host.
type manualOffset struct{ arg, host string }

func runMerge(c *cli.Context) error {
	cfg, err := mergeConfigFrom(c)
	if err != nil {
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	var read atomic.Int64
	inputs, total, closeInputs, err := openInputs(cfg, c.Int("max-reported"), &read)
	if err != nil {
		return err
	}
	defer closeInputs()
	out, err := openOutput(c, stdout, false)
	if err != nil {
		return err
	}
	stopProgress := func() {}
	if showProgress(c.Bool("no-progress"), isTerminal(stderr), out.tty, total) {
		stopProgress = startProgress(stderr, &read, total).stop
	}
	if path := c.String("cpuprofile"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	tuneGC()
	opts := timeline.MergeOptions{Offsets: cfg.offsets, Strict: cfg.strict, MaxRecorded: c.Int("max-reported")}
	sum, err := mergeTo(c.Context, out, inputs, opts)
	stopProgress()
	var unmatched []string
	if err == nil { // else the inputs were not all read
		unmatched = unmatchedOffsets(cfg.manual, &sum)
	}
	if len(unmatched) > 0 && cfg.strict {
		err = errors.New(strings.Join(unmatched, "; "))
	}
	err = out.finish(err)
	printSummary(stderr, &sum)
	if !cfg.strict {
		for _, u := range unmatched {
			fmt.Fprintf(stderr, "  warning: %s\n", u)
		}
	}
	return err
}

// maxHostsListed bounds the hosts an unmatched --offset's warning lists.
const maxHostsListed = 10

// unmatchedOffsets says, for each --offset whose host no event of the
// merge had (a typo, or a short name against an FQDN), which hosts the
// events had: the offset changed nothing, and the events of the host
// meant were not corrected as asked. Hosts of an offsets file are not
// checked: the file covers the whole cluster, and a merge of some of
// its hosts leaves the others unused.
func unmatchedOffsets(manual []manualOffset, sum *timeline.Summary) []string {
	seen := make(map[string]bool)
	for _, in := range sum.Inputs {
		for _, h := range in.Hosts {
			seen[h] = true
		}
	}
	var out []string
	for _, m := range manual {
		if !seen[m.host] {
			out = append(out, fmt.Sprintf("--offset %s matched no event: no event has host %s (hosts seen: %s)",
				m.arg, timeline.TextWord(m.host), hostList(seen)))
		}
	}
	return out
}

// hostList lists the hosts of seen, sorted, at most maxHostsListed of
// them.
func hostList(seen map[string]bool) string {
	if len(seen) == 0 {
		return "none"
	}
	hosts := make([]string, 0, len(seen))
	for h := range seen {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	more := len(hosts) - maxHostsListed
	if more > 0 {
		hosts = hosts[:maxHostsListed]
	}
	for i, h := range hosts {
		hosts[i] = timeline.TextWord(h)
	}
	list := strings.Join(hosts, ", ")
	if more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return list
}

// mergeTo merges inputs into out until done or ctx ends. JSON lines
// render on the inputs' goroutines and reach the writer as slices of
// their renderings (MergeEncodedSlices), which a file takes in one
// gathering write each; the other formats keep state from event to
// event and render here.
func mergeTo(ctx context.Context, out *output, inputs []timeline.Input, opts timeline.MergeOptions) (timeline.Summary, error) {
	if jw, ok := out.Writer.(*timeline.JSONLWriter); ok {
		newEncoder := func() timeline.Encoder { return timeline.NewJSONLEncoder() }
		return timeline.MergeEncodedSlices(inputs, opts, newEncoder, func(slices [][]byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return writeErr(jw.WriteEncodedSlices(slices))
		})
	}
	n := 0
	return timeline.Merge(inputs, opts, func(ev timeline.Event) error {
		if n++; n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return out.Write(ev)
	})
}

// tuneGC lets the heap grow to 5 times the live data between collections
// instead of twice, unless GOGC says otherwise: a merge allocates fast
// (the parsers' strings) and keeps little (the events read ahead), so the
// collector would otherwise run every few MB.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// startCPUProfile profiles the process into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// mergeConfigFrom reads and checks the flags and arguments.
func mergeConfigFrom(c *cli.Context) (*mergeConfig, error) {
	if !c.Args().Present() {
		return nil, usagef("no FILE to merge (see --help)")
	}
	if err := checkMaxReported(c); err != nil {
		return nil, err
	}
	format, err := ingest.ParseFormat(c.String("format"))
	if err != nil {
		return nil, usagef("--format: %v", err)
	}
	cfg := &mergeConfig{strict: c.Bool("strict")}
	stdin := ""
	for _, arg := range c.Args().Slice() {
		f := parseFileArg(arg, format)
		if f.path == "-" {
			if stdin != "" {
				return nil, usagef("%s and %s both read stdin, which can be read once", stdin, arg)
			}
			stdin = arg
		}
		cfg.files = append(cfg.files, f)
	}
	if err := assignHosts(cfg.files, c.StringSlice("host")); err != nil {
		return nil, err
	}
	if cfg.offsets, cfg.manual, err = loadOffsets(c.String("offsets"), c.StringSlice("offset")); err != nil {
		return nil, err
	}
	return cfg, nil
}

// stdinFormatArgs returns args with "--" put before the first FILE
// argument of merge when that is -:FORMAT (stdin in a given format): the
// flag parser takes every argument that starts with '-' for a flag until
// the first that does not, so without it -:jsonl is an unknown flag.
// Everything from the first FILE on is a FILE either way. Arguments of
// other commands, and those after a "--", are left as they are.
func stdinFormatArgs(args []string) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // the app's own flags, --help and --version, take no value
	}
	if i >= len(args) || args[i] != "merge" {
		return args
	}
	takesValue := make(map[string]bool)
	for _, f := range mergeCommand().Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--" || a == "-" || !strings.HasPrefix(a, "-"):
			return args // the FILEs start here
		case isStdinFormat(a):
			return slices.Concat(args[:j], []string{"--"}, args[j:])
		case !strings.Contains(a, "=") && takesValue[strings.TrimLeft(a, "-")]:
			j++ // the flag's value
		}
	}
	return args
}

// isStdinFormat tells whether arg is -:FORMAT.
func isStdinFormat(arg string) bool {
	name, ok := strings.CutPrefix(arg, "-:")
	if !ok || name == "" {
		return false
	}
	_, err := ingest.ParseFormat(name)
	return err == nil
}

// parseFileArg splits FILE[:FORMAT]. A suffix that is not a format name
// is part of the file name, and so is any suffix of an existing file's
// name.
func parseFileArg(arg string, def ingest.Format) mergeFile {
	f := mergeFile{path: arg, format: def}
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 || i == len(arg)-1 {
		return f
	}
	if _, err := os.Stat(arg); err == nil {
		return f
	}
	if format, err := ingest.ParseFormat(arg[i+1:]); err == nil {
		f.path, f.format = arg[:i], format
	}
	return f
}

// assignHosts sets each file's default host from --host FILE=HOST (FILE
// as given, or its base name), else from the file's name.
func assignHosts(files []mergeFile, hostFlags []string) error {
	hosts := make(map[string]string)
	for _, h := range hostFlags {
		file, host, ok := strings.Cut(h, "=")
		if !ok || file == "" || host == "" {
			return usagef("--host %q: want FILE=HOST", h)
		}
		hosts[file] = host
	}
	used := make(map[string]bool)
	for i := range files {
		f := &files[i]
		for _, key := range []string{f.path, filepath.Base(f.path)} {
			if h, ok := hosts[key]; ok && f.host == "" {
				f.host, used[key] = h, true
			}
		}
		if f.host == "" {
			f.host = hostFromFileName(f.path)
		}
	}
	for file := range hosts {
		if !used[file] {
			return usagef("--host %s=%s: %s is not one of the files", file, hosts[file], file)
		}
	}
	return nil
}

// traceExtensions are the file extensions hostFromFileName drops.
var traceExtensions = map[string]bool{
	".jsonl": true, ".ndjson": true, ".json": true, ".log": true, ".txt": true, ".trace": true,
	".journal": true, ".export": true, ".syslog": true, ".ftrace": true, ".otlp": true, ".chrome": true, ".dat": true,
}

// hostFromFileName is a file's name without its directory and trace
// extensions: /var/log/hv1.trace.json is hv1; stdin is "stdin".
func hostFromFileName(path string) string {
	if path == "-" {
		return "stdin"
	}
	name := filepath.Base(path)
	for {
		ext := filepath.Ext(name)
		if !traceExtensions[strings.ToLower(ext)] || ext == name {
			return name
		}
		name = strings.TrimSuffix(name, ext)
	}
}

// loadOffsets reads --offsets and applies the --offset constants, which
// it also returns; offs is nil when neither is given.
func loadOffsets(path string, manual []string) (offs *timeline.Offsets, given []manualOffset, err error) {
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--offsets: %w", err)
		}
		defer f.Close()
		if offs, err = timeline.LoadOffsets(f); err != nil {
			return nil, nil, fmt.Errorf("--offsets %s: %w", path, err)
		}
	}
	for _, m := range manual {
		mo, err := timeline.ParseManualOffset(m)
		if err != nil {
			return nil, nil, usagef("--offset: %v", err)
		}
		for _, prev := range given {
			if prev.host == mo.Host {
				return nil, nil, usagef("--offset %s and --offset %s: host %s has two offsets", prev.arg, m, mo.Host)
			}
		}
		given = append(given, manualOffset{arg: m, host: mo.Host})
		if offs == nil {
			offs, _ = timeline.NewOffsets(nil)
		}
		if err := offs.SetConstant(mo.Host, mo.OffsetNs); err != nil {
			return nil, nil, usagef("--offset %s: %v", m, err)
		}
	}
	return offs, given, nil
}

// openInputs opens every file and its parser, counting the bytes read
// into read. It fails, after closing them, if any file cannot be opened
// or its format is unknown, naming every such file. total is the size of
// the regular files.
func openInputs(cfg *mergeConfig, maxReported int, read *atomic.Int64) (inputs []timeline.Input, total int64, closeAll func(), err error) {
	var closers []io.Closer
	closeAll = func() {
		for _, c := range closers {
			c.Close()
		}
	}
	var errs []error
	for _, mf := range cfg.files {
		r, size, closer, err := openFile(mf.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		closers = append(closers, closer)
		total += size
		name := mf.path
		if name == "-" {
			name = "stdin"
		}
		bad := timeline.NewBadRecords(maxReported)
		opts := ingest.Options{File: name, Host: mf.host, Strict: cfg.strict, OnError: bad.Add}
		p, err := ingest.Open(countingReader{r: r, n: read}, opts, mf.format)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		inputs = append(inputs, timeline.Input{Name: name, Host: mf.host, Parser: p, Bad: bad})
	}
	switch {
	case len(errs) == 1:
		closeAll()
		return nil, 0, nil, errs[0]
	case len(errs) > 1:
		closeAll()
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d inputs cannot be read:", len(errs), len(cfg.files))
		for _, err := range errs {
			b.WriteString("\n  " + err.Error())
		}
		return nil, 0, nil, errors.New(b.String())
	}
	return inputs, total, closeAll, nil
}

// openFile opens path ("-": stdin); size is 0 unless it is a regular
// file.
func openFile(path string) (io.Reader, int64, io.Closer, error) {
	if path == "-" {
		return os.Stdin, 0, io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: is a directory", path)
	}
	size := int64(0)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, f, nil
}
