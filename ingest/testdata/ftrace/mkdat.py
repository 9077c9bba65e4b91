# Writes a small trace.dat (file format v6, see trace-cmd.dat.v6(5)) that
# trace-cmd report reads: three CPUs, with the ftrace events function,
# print (trace_marker writes), funcgraph_entry and funcgraph_exit, and
# sched_wakeup, sched_switch and irq_handler_entry. The events are made
# up; the text trace-cmd prints from them is real. The trace-cmd-3.1.6*
# samples beside this file are, with trace-cmd 3.1.6 (Debian 12):
#
#   python3 mkdat.py ../detect/trace.dat
#   trace-cmd report -i ../detect/trace.dat > trace-cmd-3.1.6.txt
#   trace-cmd report -N -t -i ../detect/trace.dat > trace-cmd-3.1.6-N-t.txt
#   trace-cmd report -l -O tailprint -i ../detect/trace.dat > trace-cmd-3.1.6-l-tailprint.txt
#   trace-cmd report -R --ts-diff -i ../detect/trace.dat > trace-cmd-3.1.6-R-ts-diff.txt
import struct, sys

PAGE = 4096
def s64(x): return struct.pack('<Q', x)
def s32(x): return struct.pack('<I', x)

header_page = b"""\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;
"""
header_event = b"""# compressed entry header
\ttype_len    :    5 bits
\ttime_delta  :   27 bits
\tarray       :   32 bits

\tpadding     : type == 29
\ttime_extend : type == 30
\ttime_stamp : type == 31
\tdata max type_len  == 28
"""
common = """\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
"""
fmt_function = ("name: function\nID: 1\nformat:\n" + common + """
\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;

print fmt: " %ps <-- %ps", (void *)REC->ip, (void *)REC->parent_ip
""").encode()
fmt_print = ("name: print\nID: 5\nformat:\n" + common + """
\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;

print fmt: "%ps: %s", (void *)REC->ip, REC->buf
""").encode()
fmt_wakeup = ("name: sched_wakeup\nID: 317\nformat:\n" + common + """
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:int target_cpu;\toffset:32;\tsize:4;\tsigned:1;

print fmt: "comm=%s pid=%d prio=%d target_cpu=%03d", REC->comm, REC->pid, REC->prio, REC->target_cpu
""").encode()
fmt_switch = ("name: sched_switch\nID: 316\nformat:\n" + common + """
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;

print fmt: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s ==> next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, REC->prev_state ? __print_flags(REC->prev_state, "|", { 1, "S" }, { 2, "D" }) : "R", REC->next_comm, REC->next_pid, REC->next_prio
""").encode()
fmt_irq = ("name: irq_handler_entry\nID: 120\nformat:\n" + common + """
\tfield:int irq;\toffset:8;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] name;\toffset:12;\tsize:4;\tsigned:1;

print fmt: "irq=%d name=%s", REC->irq, __get_str(name)
""").encode()

fmt_fgentry = ("name: funcgraph_entry\nID: 11\nformat:\n" + common + """
\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;

print fmt: "--> %ps (%d)", (void *)REC->func, REC->depth
""").encode()
fmt_fgexit = ("name: funcgraph_exit\nID: 10\nformat:\n" + common + """
\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;
\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;
\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;

print fmt: "<-- %ps (%d) (start: %llx  end: %llx) over: %d", (void *)REC->func, REC->depth, REC->calltime, REC->rettime, REC->depth
""").encode()

kallsyms = b"""ffffffff81000000 T _stext
ffffffff810a1000 T ktime_get
ffffffff810a2000 T tick_check_idle
ffffffff810b1000 T irq_enter
ffffffff810b2000 T do_IRQ
ffffffff81200000 T tracing_mark_write
ffffffff81300000 T clock_gettime
ffffffff81301000 T do_syscall_64
ffffffff81400000 T igc_ptp_getcrosststamp
ffffffff81401000 T igc_phc_get_syncdevice_time
ffffffff81402000 T igc_rd32
ffffffff81ffffff T _etext
"""
cmdlines = b"1655 phc2sys\n0 <idle>\n4242 clockd\n4250 clockd\n118 kworker/1:2\n"

def comm16(s): return s.encode().ljust(16, b'\0')
def ev(etype, flags, preempt, pid, body):
    d = struct.pack('<HBBi', etype, flags, preempt, pid) + body
    while len(d) % 4: d += b'\0'
    return d

# flags bits: 0x01 irqs off, 0x08 need resched, 0x10 hardirq, 0x20 softirq
FN = lambda pid, ip, pip, fl=0, pc=0: ev(1, fl, pc, pid, s64(ip) + s64(pip))
WAKE = lambda pid, comm, tpid, prio, cpu: ev(317, 0x01, 3, pid, comm16(comm) + struct.pack('<iii', tpid, prio, cpu))
SWITCH = lambda pid, pc_, pp, ps, nc, np_: ev(316, 0x01, 2, pid, comm16(pc_) + struct.pack('<iiq', pp, 120, ps) + comm16(nc) + struct.pack('<ii', np_, 120))
def PRINT(pid, text):
    return ev(5, 0, 0, pid, s64(0xffffffff81200000) + text.encode() + b'\0')
def GE(pid, fn, depth): return ev(11, 0, 0, pid, s64(fn) + struct.pack('<i', depth))
def GX(pid, fn, depth, call, ret): return ev(10, 0, 0, pid, s64(fn) + struct.pack('<iI', depth, 0) + s64(BASE + call) + s64(BASE + ret))
def IRQ(pid, irq, name):
    nb = name.encode() + b'\0'
    return ev(120, 0x11, 1, pid, struct.pack('<i', irq) + struct.pack('<HH', 16, len(nb)) + nb)

BASE = 23636756054000  # ns since boot
cpu_events = {
  0: [(0, FN(0, 0xffffffff810a1000, 0xffffffff810a2000, 0x11, 1)),
      (1000, FN(0, 0xffffffff810b1000, 0xffffffff810b2000, 0x11, 1)),
      (9000, IRQ(0, 27, 'virtio0-input.0')),
      (150000000, FN(0, 0xffffffff810a1000, 0xffffffff810a2000, 0x01, 1))],
  1: [(7000, WAKE(118, 'clockd', 4242, 120, 1)),
      (16000, SWITCH(118, 'kworker/1:2', 118, 2, 'clockd', 4242)),
      (48000, PRINT(4242, 'B|4242|apply slot 17\n')),
      (136123, FN(4250, 0xffffffff81300000, 0xffffffff81301000)),
      (137001, PRINT(4242, 'E|4242\n'))],
  2: [(100, GE(1655, 0xffffffff81400000, 0)),
      (2100, GE(1655, 0xffffffff81401000, 1)),
      (3000, GE(1655, 0xffffffff81402000, 2)),
      (3179, GX(1655, 0xffffffff81402000, 2, 3000, 3179)),
      (179513, GX(1655, 0xffffffff81401000, 1, 2100, 179513)),
      (182037, GX(1655, 0xffffffff81400000, 0, 100, 182037))],
}

def page(events):
    data = b''
    t0 = BASE + events[0][0]
    last = t0
    for off, body in events:
        t = BASE + off
        delta = t - last
        if delta >= (1 << 27):
            data += s32(30 | ((delta & ((1 << 27) - 1)) << 5)) + s32(delta >> 27)
            delta = 0
        tl = len(body) // 4
        assert 1 <= tl <= 28
        data += s32(tl | (delta << 5)) + body
        last = t
    return (s64(t0) + s64(len(data)) + data).ljust(PAGE, b'\0')

out = bytearray()
out += b'\x17\x08\x44tracing6\0' + bytes([0, 8]) + s32(PAGE)
out += b'header_page\0' + s64(len(header_page)) + header_page
out += b'header_event\0' + s64(len(header_event)) + header_event
ff = [fmt_function, fmt_print, fmt_fgentry, fmt_fgexit]
out += s32(len(ff))
for f in ff: out += s64(len(f)) + f
systems = [(b'sched', [fmt_switch, fmt_wakeup]), (b'irq', [fmt_irq])]
out += s32(len(systems))
for name, fmts in systems:
    out += name + b'\0' + s32(len(fmts))
    for f in fmts: out += s64(len(f)) + f
out += s32(len(kallsyms)) + kallsyms
out += s32(0)
out += s64(len(cmdlines)) + cmdlines
ncpu = 3
out += s32(ncpu) + b'flyrecord\0'
hdr_end = len(out) + ncpu * 16
start = (hdr_end + PAGE - 1) // PAGE * PAGE
pages = [page(cpu_events[c]) for c in range(ncpu)]
offs = []
o = start
for p in pages:
    offs.append((o, len(p))); o += len(p)
for o, l in offs: out += s64(o) + s64(l)
out = out.ljust(start, b'\0')
for p in pages: out += p
open(sys.argv[1], 'wb').write(out)
