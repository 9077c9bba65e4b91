//go:build !linux

package vclock

func monoNow() int64 { return monoSyscall() }
