// Package deploy holds what installs clockd on a host, and the tests that
// check it; it has no code. systemd/ has the unit (Type=notify, watchdog,
// sandbox), the sysusers.d and tmpfiles.d entries, an example
// configuration and the installation steps.
//
// The tests run systemd's own checkers on the files: systemd-analyze
// verify and security on the unit (against a freshly built clockd),
// systemd-sysusers and systemd-tmpfiles into a scratch root. They also
// check that the example configuration parses and holds exactly the
// documented keys, and that the files agree on paths. They need the
// systemd package's tools and install nothing.
package deploy
