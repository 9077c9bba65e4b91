// Command vmplot draws a VM's clock across a live migration, computed by
// vmclock.At from the records the ordering state machine commits: one
// figure where the VM resumes behind the destination's reference, one
// where it resumes ahead.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:            "vmplot",
		HideHelpCommand: true,
		Usage:           "draw a VM's clock against the reference across a live migration",
		Description: "Writes vm-migration-behind.png and vm-migration-ahead.png into --out. ρ_vm is\n" +
			"exaggerated by default (5000 ppm, ten times the cluster default) so that the\n" +
			"convergence fits in a minute.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: "docs/img", Usage: "output `DIR`", EnvVars: []string{"CLOCKD_VMPLOT_OUT"}},
			&cli.Int64Flag{Name: "slew-ppm", Value: defaults.slewPPM, Usage: "ρ_vm in `PPM`: the VM clock's largest rate difference from the reference", EnvVars: []string{"CLOCKD_VMPLOT_SLEW_PPM"}},
			&cli.DurationFlag{Name: "offset", Value: defaults.offset, Usage: "`DURATION` between the floor and the destination's reference at resume, drawn behind and ahead", EnvVars: []string{"CLOCKD_VMPLOT_OFFSET"}},
			&cli.DurationFlag{Name: "downtime", Value: defaults.downtime, Usage: "`DURATION` the VM is paused", EnvVars: []string{"CLOCKD_VMPLOT_DOWNTIME"}},
			&cli.DurationFlag{Name: "before", Value: defaults.before, Usage: "`DURATION` of timeline drawn before the freeze", EnvVars: []string{"CLOCKD_VMPLOT_BEFORE"}},
			&cli.DurationFlag{Name: "after", Value: defaults.after, Usage: "`DURATION` of timeline drawn after the convergence", EnvVars: []string{"CLOCKD_VMPLOT_AFTER"}},
		},
		Action: func(c *cli.Context) error {
			cfg := config{slewPPM: c.Int64("slew-ppm"), offset: c.Duration("offset"), downtime: c.Duration("downtime"),
				before: c.Duration("before"), after: c.Duration("after")}
			if err := cfg.validate(); err != nil {
				return cli.Exit("vmplot: "+err.Error(), 2)
			}
			paths, _, err := generate(c.String("out"), cfg)
			if err != nil {
				return cli.Exit("vmplot: "+err.Error(), 1)
			}
			for _, p := range paths {
				fmt.Fprintln(c.App.Writer, "wrote", p)
			}
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vmplot:", err)
		os.Exit(1)
	}
}
