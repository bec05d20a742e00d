#!/usr/bin/perl
# The host side of a supervised container's terminal (run -d -t, start -a of a -t container): a pty
# whose slave becomes the executor's stdin, stdout, stderr and controlling terminal, so that runc,
# crun and builtin.pl give the container a terminal exactly as they do under a CLI on a terminal.
# This process relays its stdin to the master and the master to its stdout (the supervisor's pipes),
# and applies window sizes read from fd 3 as "ROWS COLS\n" lines: setting the master's size sends
# SIGWINCH to the executor, which resizes the container's own terminal from it.
#
#   pty-host.pl ARCH eof|keep COMMAND ARGS...   exits with COMMAND's status (128 + N after signal N)
# With `eof`, the end of stdin is passed on as ^D (docker's StdinOnce: `run -it` fed by a pipe); with
# `keep`, stdin ending (an attach leaving, or none at all) is nothing the container sees.
use strict;
use warnings;
# No POSIX (it costs ~30 ms to load): termios and setsid through ioctl() and syscall().

my %SETSID = (x64 => 112, arm64 => 157);
use constant {
  TIOCSCTTY => 0x540E, TIOCGPTN => 0x80045430, TIOCSPTLCK => 0x40045431, TIOCSWINSZ => 0x5414,
  TCGETS => 0x5401, TCSETS => 0x5402, WNOHANG => 1,
  F_GETFL => 3, F_SETFL => 4, O_NONBLOCK => 0x800, EINTR => 4, EAGAIN => 11,
};

sub fail { print STDERR "berth: container terminal: $_[0]\n"; exit(125); }

my $arch = shift @ARGV;
my $setsid = $SETSID{$arch // ''} or fail("unsupported architecture " . ($arch // '?'));
my $eofOnEnd = (shift(@ARGV) // '') eq 'eof' ? 1 : 0;
@ARGV or fail('usage: pty-host.pl ARCH eof|keep COMMAND ARGS...');

# the size channel, when given: taken before anything else can be opened as fd 3
my $ctl;
open($ctl, '<&=', 3) or undef $ctl;

open(my $master, '+<', '/dev/ptmx') or fail("open /dev/ptmx: $!");
my $unlock = pack('i', 0);
ioctl($master, TIOCSPTLCK, $unlock) or fail("unlockpt: $!");
my $n = pack('i', 0);
ioctl($master, TIOCGPTN, $n) or fail("ptsname: $!");
my $slavePath = '/dev/pts/' . unpack('i', $n);

sub set_size { my $ws = pack('S4', $_[0], $_[1], 0, 0); ioctl($master, TIOCSWINSZ, $ws); }
set_size(24, 80); # until a client tells its own

# raw, as a terminal emulator leaves it: the container's terminal does the line discipline
sub make_raw {
  my ($fh) = @_;
  my $t = "\0" x 60;
  ioctl($fh, TCGETS, $t) or fail("tcgetattr: $!");
  my ($i, $o, $c, $l, $line, $cc) = unpack('L4 C a19', $t);
  $i &= ~(0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x80 | 0x100 | 0x400); # IGNBRK BRKINT PARMRK ISTRIP INLCR IGNCR ICRNL IXON
  $o &= ~0x1;                                                    # OPOST
  $l &= ~(0x8 | 0x40 | 0x2 | 0x1 | 0x8000);                      # ECHO ECHONL ICANON ISIG IEXTEN
  $c = ($c & ~(0x30 | 0x100)) | 0x30;                            # CS8, no PARENB
  substr($cc, 6, 1) = chr(1);                                    # VMIN
  substr($cc, 5, 1) = chr(0);                                    # VTIME
  ioctl($fh, TCSETS, pack('L4 C a19', $i, $o, $c, $l, $line, $cc)) or fail("tcsetattr: $!");
}

# the child tells it has made the terminal raw by exec'ing (its end of this pipe is close-on-exec)
pipe(my $readyR, my $readyW) or fail("pipe: $!");
my $pid = fork() // fail("fork: $!");
if ($pid == 0) {
  close($readyR);
  syscall($setsid) != -1 or fail("setsid: $!");
  open(my $slave, '+<', $slavePath) or fail("open $slavePath: $!");
  ioctl($slave, TIOCSCTTY, 0); # (opening it as a session leader made it the controlling terminal already)
  make_raw($slave);
  open(STDIN, '<&', $slave) or fail("stdin: $!");
  open(STDOUT, '>&', $slave) or fail("stdout: $!");
  open(STDERR, '>&', $slave) or fail("stderr: $!");
  close($slave);
  close($ctl) if $ctl; # the size channel is ours, not the executor's
  exec { $ARGV[0] } @ARGV or fail("exec $ARGV[0]: $!");
}
close($readyW);
sysread($readyR, my $ignored, 1); # EOF once it has exec'd (or failed): typed keys now meet a raw terminal
close($readyR);

$SIG{$_} = 'IGNORE' for qw(HUP INT PIPE); # the executor is stopped through its own kill, never through us
# The master is non-blocking: input waits in $pending while the container does not read, and output
# keeps flowing meanwhile (a blocked write to the master would stop both: a pasted text could hang it).
my $flags = fcntl($master, F_GETFL, 0) or fail("fcntl: $!");
fcntl($master, F_SETFL, $flags | O_NONBLOCK) or fail("fcntl: $!");
my ($stdinOpen, $pending, $eofDue, $sizes, $status) = (1, '', 0, '', undef);

sub write_all {
  my ($fh, $buf) = @_;
  my $off = 0;
  while ($off < length($buf)) {
    my $w = syswrite($fh, $buf, length($buf) - $off, $off);
    if (!defined $w) { next if ($! + 0) == EINTR; return 0; }
    $off += $w;
  }
  return 1;
}

while (1) {
  my ($rin, $win) = ('', '');
  vec($rin, fileno($master), 1) = 1;
  vec($rin, 0, 1) = 1 if $stdinOpen && length($pending) < 65536;
  vec($rin, fileno($ctl), 1) = 1 if $ctl;
  vec($win, fileno($master), 1) = 1 if length($pending);
  # a second's timeout: the executor may be gone while something it started still holds the slave
  my $ready = select(my $rout = $rin, my $wout = $win, undef, defined $status ? 0 : 1);
  if ($ready < 0) { next if ($! + 0) == EINTR; last; }
  if ($ready == 0) {
    last if defined $status; # it has ended and its output is drained
    $status = $? if waitpid($pid, WNOHANG) == $pid;
    next;
  }
  if (vec($rout, fileno($master), 1)) {
    my $got = sysread($master, my $buf, 65536);
    if (!defined $got && (($! + 0) == EAGAIN || ($! + 0) == EINTR)) { $got = -1; }
    last unless $got; # EIO: every slave fd is closed
    write_all(\*STDOUT, $buf) or last if $got > 0;
  }
  if (length($pending) && vec($wout, fileno($master), 1)) {
    my $w = syswrite($master, $pending);
    substr($pending, 0, $w) = '' if defined $w;
  }
  if ($eofDue && !length($pending)) { syswrite($master, "\x04"); $eofDue = 0; } # ^D, as a terminal sends it
  if ($stdinOpen && vec($rout, 0, 1)) {
    my $got = sysread(STDIN, my $buf, 65536);
    if ($got) { $pending .= $buf; }
    elsif (!defined $got && ($! + 0) == EINTR) { }
    else { $stdinOpen = 0; $eofDue = $eofOnEnd; } # the end of a StdinOnce stdin; others stay open
  }
  if ($ctl && vec($rout, fileno($ctl), 1)) {
    my $got = sysread($ctl, my $buf, 4096);
    if (!$got) { undef $ctl; next; }
    $sizes .= $buf;
    while ($sizes =~ s/^(\d+) (\d+)\n//) { set_size($1, $2); }
    $sizes = '' if length($sizes) > 64; # garbage: drop it
  }
}
if (!defined $status) {
  while (1) { my $r = waitpid($pid, 0); last if $r == $pid || $r == -1 && ($! + 0) != EINTR; }
  $status = $?;
}
exit(($status & 127) ? 128 + ($status & 127) : $status >> 8);
