#!/usr/bin/perl
# berth's built-in container executor. Perl because perl-base is Essential in Debian (always there)
# and its syscall() reaches what Node cannot: unshare, setns, mount, pivot_root, capset, prctl.
# Node (builtin.ts) turns the bundle's config.json into a plan of NUL-separated records and
# prepares cgroups; this program only makes syscalls in the right order.
#
#   builtin.pl run  PLAN PIDFILE   a new container: PID 1 of new pid/mount/uts/ipc(/net) namespaces
#                                  (or joining the net namespace at `netnspath`),
#                                  pivot_root into the rootfs, capabilities and user dropped, exec
#   builtin.pl exec PLAN PIDFILE   a process entering the namespaces of the container whose init is
#                                  the `target` record's pid
# Both stay in the foreground: this process waits for the container process, forwards signals to it
# and exits with its status (128 + signal when killed). PIDFILE receives its host pid.
use strict;
use warnings;
# No POSIX or Errno: loading POSIX alone costs ~30 ms, more than the whole container start.

my %NR = (
  x64   => { unshare => 272, setns => 308, pivot_root => 155, mount => 165, umount2 => 166, sethostname => 170,
             prctl => 157, capset => 126, mknodat => 259, setgroups => 116, setresuid => 117, setresgid => 119,
             setsid => 112, dup3 => 292, exit_group => 231, prlimit64 => 302, openat => 257, mkdirat => 258,
             readlinkat => 267, close => 3, newfstatat => 262, unlinkat => 263, symlinkat => 266, fchmodat => 268,
             fstatfs => 138, open_tree => 428, move_mount => 429, mount_setattr => 442 },
  arm64 => { unshare => 97, setns => 268, pivot_root => 41, mount => 40, umount2 => 39, sethostname => 161,
             prctl => 167, capset => 91, mknodat => 33, setgroups => 159, setresuid => 147, setresgid => 149,
             setsid => 157, dup3 => 24, exit_group => 94, prlimit64 => 261, openat => 56, mkdirat => 34,
             readlinkat => 78, close => 57, newfstatat => 79, unlinkat => 35, symlinkat => 36, fchmodat => 53,
             fstatfs => 44, open_tree => 428, move_mount => 429, mount_setattr => 442 },
);
my $nr;

use constant {
  CLONE_NEWNS => 0x00020000, CLONE_NEWUTS => 0x04000000, CLONE_NEWIPC => 0x08000000,
  CLONE_NEWPID => 0x20000000, CLONE_NEWNET => 0x40000000, CLONE_NEWCGROUP => 0x02000000,
  MS_RDONLY => 1, MS_NOSUID => 2, MS_NODEV => 4, MS_NOEXEC => 8, MS_REMOUNT => 32, MS_BIND => 4096,
  MS_REC => 16384, MS_PRIVATE => 1 << 18, MNT_DETACH => 2,
  PR_CAPBSET_DROP => 24, PR_SET_NO_NEW_PRIVS => 38, PR_CAP_AMBIENT => 47, PR_CAP_AMBIENT_CLEAR_ALL => 4,
  PR_SET_PDEATHSIG => 1, PR_SET_SECCOMP => 22, SECCOMP_MODE_FILTER => 2,
  TIOCSCTTY => 0x540E, TIOCGPTN => 0x80045430, TIOCSPTLCK => 0x40045431, TIOCGWINSZ => 0x5413, TIOCSWINSZ => 0x5414,
  SIOCSIFFLAGS => 0x8914, IFF_UP => 1, IFF_LOOPBACK => 8, IFF_RUNNING => 0x40,
  AT_FDCWD => -100, AT_EMPTY_PATH => 0x1000,
  O_WRONLY => 1, O_CREAT => 0100, O_EXCL => 0200, O_DIRECTORY => 0200000, O_NOFOLLOW => 0400000,
  O_CLOEXEC => 02000000, O_PATH => 010000000,
  S_IFMT => 0170000, S_IFDIR => 0040000, S_IFREG => 0100000, PROC_SUPER_MAGIC => 0x9fa0,
  OPEN_TREE_CLONE => 1, AT_RECURSIVE => 0x8000, MOVE_MOUNT_F_EMPTY_PATH => 0x4, MOVE_MOUNT_T_EMPTY_PATH => 0x40,
};

sub fail { print STDERR "berth: container setup: $_[0]\n"; hard_exit(125); }

# exit without perl's cleanup (a forked child must not run it twice)
sub hard_exit { syscall($nr->{exit_group}, $_[0] + 0) if $nr; exit($_[0]); }

sub errno_is { return ($! + 0) == $_[0]; } # ENOENT 2, EEXIST 17, EINTR 4

# syscall() wants numbers as numbers and strings as strings; undef becomes a NULL pointer via 0
sub sys {
  my ($name, @args) = @_;
  my $r = syscall($nr->{$name}, @args);
  return $r;
}

sub must {
  my ($what, $name, @args) = @_;
  my $r = sys($name, @args);
  fail("$what: $!") if $r == -1;
  return $r;
}

# ---- the plan: records of NUL-terminated fields; the first field names the record ---------------
my ($mode, $planFile, $pidFile, $arch) = @ARGV;
fail('usage: builtin.pl run|exec PLAN PIDFILE ARCH') unless $mode && $planFile && $pidFile && $arch && ($mode eq 'run' || $mode eq 'exec');
$nr = $NR{$arch} or fail("unsupported architecture $arch");
my %plan = (arg => [], env => [], mount => [], device => [], symlink => [], mask => [], ropath => [], cgroup => [], group => [], rlimit => []);
{
  open(my $fh, '<', $planFile) or fail("cannot read $planFile: $!");
  local $/;
  my $text = <$fh>;
  close $fh;
  my @f = split /\0/, $text, -1;
  pop @f; # after the last NUL
  my %arity = (arg => 1, env => 1, mount => 7, device => 5, symlink => 2, mask => 1, ropath => 1, cgroup => 1, group => 1, rlimit => 3);
  while (@f) {
    my $k = shift @f;
    if (exists $arity{$k}) { push @{ $plan{$k} }, [splice(@f, 0, $arity{$k})]; }
    else { $plan{$k} = shift @f; }
  }
}
fail('the plan has no command') unless @{ $plan{arg} };
unlink $planFile if $mode eq 'exec'; # read: an exec's plan is its own (one left in the background has no caller to remove it)

# ---- the container process (after fork; inside the new pid namespace for `run`) -----------------

sub join_cgroups { for my $c (@{ $plan{cgroup} }) { open(my $fh, '>', $c->[0]) or fail("cgroup $c->[0]: $!"); print $fh "0"; close($fh) or fail("cgroup $c->[0]: $!"); } }

# ---- paths inside the rootfs ------------------------------------------------------------------
# Mount points, device nodes and /dev symlinks are named by their container paths and found here, at
# the moment each is made, after the mounts before it: one component at a time from the rootfs, through
# O_PATH descriptors opened without following symlinks. A symlink (the image's, or one that a container
# sharing a volume put there meanwhile) is read and followed inside the rootfs, never on the host; a
# magic link under /proc is read as its text, so /proc/self/root leads back to the container's root.
# (Mostly through sys(), whose copies spare syscall() a literal string, which it refuses.)
# Nothing may be made below /proc. The mount then goes onto /proc/self/fd/N of the descriptor.
my $rootfd;

sub close_fd { sys('close', $_[0] + 0) if defined $_[0] && $_[0] >= 0; }

sub on_proc {
  my ($fd) = @_;
  my $buf = "\0" x 128;
  return 0 if syscall($nr->{fstatfs}, $fd + 0, $buf) == -1; # fills $buf: not through sys()
  return unpack('q', substr($buf, 0, 8)) == PROC_SUPER_MAGIC; # f_type, the first field of struct statfs
}

sub fd_mode {
  my ($fd) = @_;
  my $st = "\0" x 256;
  my $empty = '';
  return undef if syscall($nr->{newfstatat}, $fd + 0, $empty, $st, AT_EMPTY_PATH) == -1; # fills $st: not through sys()
  return unpack('L', substr($st, $arch eq 'x64' ? 24 : 16, 4)); # st_mode in struct stat
}

# An O_PATH descriptor of container path $path. $create: 'dir' makes missing directories, 'file' also
# the last component as an empty file, 'parent' stops at the directory that holds the last component
# (returned with that component's name).
sub open_in_root {
  my ($path, $create) = @_;
  my @todo = grep { length && $_ ne '.' } split m{/}, $path;
  my $leaf;
  $leaf = pop @todo if $create eq 'parent';
  fail("$path: no name") if $create eq 'parent' && (!defined $leaf || $leaf eq '..');
  my @up;                 # descriptors of the directories above the current one
  my @walked;             # their names: the container path so far
  my $cur = sys('openat', $rootfd, '.', O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  fail("the rootfs: $!") if $cur == -1;
  my ($links, $again) = (0, 0);
  while (@todo) {
    fail("$path: leads below /proc") if on_proc($cur); # whatever the directory is called
    my $name = shift @todo;
    if ($name eq '..') {
      if (@up) { close_fd($cur); $cur = pop @up; pop @walked; }
      next;
    }
    my $buf = "\0" x 4096;
    my $n = syscall($nr->{readlinkat}, $cur, $name, $buf, 4096); # fills $buf: not through sys()
    if ($n >= 0) {
      fail("$path: too many levels of symbolic links") if ++$links > 40;
      my $target = substr($buf, 0, $n);
      unshift @todo, grep { length && $_ ne '.' } split m{/}, $target;
      if ($target =~ m{^/}) { close_fd($_) for @up, $cur; @up = (); @walked = (); $cur = sys('openat', $rootfd, '.', O_PATH | O_DIRECTORY | O_CLOEXEC, 0); }
      next;
    }
    fail("$path: $!") unless errno_is(22) || errno_is(2); # EINVAL: not a symlink; ENOENT: not there
    my $fd = sys('openat', $cur, $name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
    if ($fd == -1) {
      fail("$path: $!") unless errno_is(2) && $create ne 'none';
      fail("$path: nothing may be made below /$walked[0]") if @walked && $walked[0] eq 'proc';
      fail("$path: it keeps changing under berth") if ++$again > 10; # made, and gone again before it was opened
      if (!@todo && $create eq 'file') {
        my $w = sys('openat', $cur, $name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        fail("creating $path: $!") if $w == -1 && !errno_is(17);
        close_fd($w);
      } else {
        fail("mkdir $path: $!") if sys('mkdirat', $cur, $name, 0755) == -1 && !errno_is(17);
      }
      unshift @todo, $name; # look again: made now (or by someone else meanwhile, which is checked the same way)
      next;
    }
    push @up, $cur;
    push @walked, $name;
    $cur = $fd;
    $again = 0;
    fail("$path: leads below /proc") if @walked > 1 && $walked[0] eq 'proc';
    fail("$path: a component is not a directory") if @todo && ((fd_mode($cur) // 0) & S_IFMT) != S_IFDIR;
  }
  close_fd($_) for @up;
  return ($cur, $leaf, $links);
}

# A bind with flags (read-only, nosuid …) is cloned detached (open_tree), given its flags there
# (mount_setattr) and only then attached onto the target's descriptor (move_mount): nothing looks the
# target up again, so a container sharing a volume cannot swap another mount in under the flags.
# Returns 0 where the kernel lacks these calls (before 5.12), for mount and remount instead.
sub bind_with_flags {
  my ($source, $fd, $recursive, $flags, $target) = @_;
  my $tree = sys('open_tree', AT_FDCWD, $source, OPEN_TREE_CLONE | O_CLOEXEC | ($recursive ? AT_RECURSIVE : 0));
  return 0 if $tree == -1 && errno_is(38);
  fail("bind $source on $target: $!") if $tree == -1;
  my $set = $flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC); # the same bits as MOUNT_ATTR_*
  $set |= 0x80 if $flags & 2048; # nodiratime
  my $clear = 0;
  if ($flags & (1024 | (1 << 21) | (1 << 24))) { # noatime, relatime, strictatime: one atime mode
    $clear = 0x70;
    $set |= $flags & 1024 ? 0x10 : $flags & (1 << 24) ? 0x20 : 0;
  }
  my $attr = pack('QQQQ', $set, $clear, MS_PRIVATE, 0); # struct mount_attr
  must("flags of the bind on $target", 'mount_setattr', $tree, '', AT_EMPTY_PATH | ($recursive ? AT_RECURSIVE : 0), $attr, length $attr);
  must("bind $source on $target", 'move_mount', $tree, '', $fd + 0, '', MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  close_fd($tree);
  return 1;
}

sub do_mounts {
  my ($rootfs) = @_;
  $rootfd = sys('openat', AT_FDCWD, $rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  fail("the rootfs $rootfs: $!") if $rootfd == -1;
  for my $m (@{ $plan{mount} }) {
    my ($type, $source, $target, $flags, $data, $kind, $remount) = @$m;
    my ($fd, undef, $links) = open_in_root($target, $kind);
    my $mode = (fd_mode($fd) // 0) & S_IFMT;
    fail("mount target $target is not a " . ($kind eq 'file' ? 'file' : 'directory')) if $mode != ($kind eq 'file' ? S_IFREG : S_IFDIR);
    fail("$target is reached through a symlink: no $type mount there") if $links && ($type eq 'proc' || $type eq 'sysfs');
    if ($remount && ($flags & MS_BIND) && bind_with_flags($source, $fd, $flags & MS_REC, $remount + 0, $target)) { close_fd($fd); next; }
    must("mount $type on $target", 'mount', $source, "/proc/self/fd/$fd", $type, $flags + 0, length($data) ? $data : 0);
    close_fd($fd);
    if ($remount) { # (kernels before 5.12) on what was just mounted there, found again
      my ($top) = open_in_root($target, 'none');
      must("remount $target", 'mount', 'none', "/proc/self/fd/$top", 0, MS_REMOUNT | MS_BIND | ($remount + 0), 0);
      close_fd($top);
    }
  }
  for my $d (@{ $plan{device} }) {
    my ($path, $type, $major, $minor, $perm) = @$d;
    my $dev = (($major & 0xfff) << 8) | ($minor & 0xff) | (($minor & ~0xff) << 12);
    my $ifmt = $type eq 'c' ? 0020000 : 0060000;
    my ($dir, $name) = open_in_root($path, 'parent');
    sys('unlinkat', $dir, $name, 0);
    must("mknod $path", 'mknodat', $dir, $name, $ifmt | oct($perm), $dev);
    must("chmod $path", 'fchmodat', $dir, $name, oct($perm), 0);
    close_fd($dir);
  }
  for my $s (@{ $plan{symlink} }) {
    my ($dir, $name) = open_in_root($s->[1], 'parent');
    sys('unlinkat', $dir, $name, 0);
    must("symlink $s->[1]", 'symlinkat', $s->[0], $dir, $name);
    close_fd($dir);
  }
  close_fd($rootfd);
}

sub loopback_up {
  socket(my $sock, 2, 2, 0) or fail("socket: $!"); # AF_INET, SOCK_DGRAM
  my $ifr = pack('a16 s x22', 'lo', IFF_UP | IFF_LOOPBACK | IFF_RUNNING);
  ioctl($sock, SIOCSIFFLAGS, $ifr) or fail("bringing up lo: $!");
  close $sock;
}

sub enter_root {
  my ($rootfs) = @_;
  chdir($rootfs) or fail("chdir $rootfs: $!");
  must('pivot_root', 'pivot_root', '.', '.');
  must('detaching the old root', 'umount2', '.', MNT_DETACH);
  chdir('/') or fail("chdir /: $!");
  for my $p (map { $_->[0] } @{ $plan{mask} }) {
    next unless -e $p;
    if (-d $p) { must("masking $p", 'mount', 'tmpfs', $p, 'tmpfs', MS_RDONLY, 0); }
    else { must("masking $p", 'mount', '/dev/null', $p, 0, MS_BIND, 0); }
  }
  for my $p (map { $_->[0] } @{ $plan{ropath} }) {
    next unless -e $p;
    must("read-only $p", 'mount', $p, $p, 0, MS_BIND | MS_REC, 0);
    must("read-only $p", 'mount', 'none', $p, 0, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
  }
  must('read-only root', 'mount', 'none', '/', 0, MS_REMOUNT | MS_BIND | MS_RDONLY, 0) if $plan{readonly};
}

sub attach_tty {
  my ($path) = @_;
  sys('setsid');
  open(my $tty, '+<', $path) or fail("open $path: $!");
  ioctl($tty, TIOCSCTTY, 0) or fail("TIOCSCTTY: $!");
  for my $n (0, 1, 2) { must('dup3', 'dup3', fileno($tty), $n, 0); }
  close $tty if fileno($tty) > 2;
}

# --ulimit: before the capabilities go (raising a hard limit needs CAP_SYS_RESOURCE)
sub set_rlimits {
  for my $r (@{ $plan{rlimit} }) {
    my ($res, @v) = @$r;
    my @lim = map { $_ eq 'unlimited' ? ~0 : $_ + 0 } @v;
    must("setting rlimit $res to $v[0]:$v[1]", 'prlimit64', 0, $res + 0, pack('QQ', @lim), 0);
  }
}

# The seccomp filter (a BPF program Node compiled, in hex) goes on while this process still holds
# CAP_SYS_ADMIN, which installing one without no_new_privs needs; what follows (prctl, setgroups,
# setres[ug]id, capset, execve) is never in it.
sub install_seccomp {
  return unless defined $plan{seccomp};
  my $prog = pack('H*', $plan{seccomp});
  my $fprog = pack('S x![P] P', length($prog) / 8, $prog); # struct sock_fprog { u16 len; sock_filter *filter; }
  must('installing the seccomp filter', 'prctl', PR_SET_SECCOMP, SECCOMP_MODE_FILTER, $fprog, 0, 0);
}

sub drop_privileges {
  set_rlimits();
  install_seccomp();
  my $last = 40;
  if (open(my $fh, '<', '/proc/sys/kernel/cap_last_cap')) { $last = <$fh> + 0; close $fh; }
  my ($blo, $bhi) = ($plan{bounding_lo} + 0, $plan{bounding_hi} + 0);
  for my $cap (0 .. $last) {
    my $kept = $cap < 32 ? ($blo >> $cap) & 1 : ($bhi >> ($cap - 32)) & 1;
    must("dropping capability $cap", 'prctl', PR_CAPBSET_DROP, $cap, 0, 0, 0) unless $kept;
  }
  sys('prctl', PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  my @groups = map { $_->[0] + 0 } @{ $plan{group} };
  must('setgroups', 'setgroups', scalar(@groups), @groups ? pack('L*', @groups) : 0);
  my ($uid, $gid) = ($plan{uid} + 0, $plan{gid} + 0);
  must("setresgid $gid", 'setresgid', $gid, $gid, $gid);
  must("setresuid $uid", 'setresuid', $uid, $uid, $uid); # to a non-root uid: permitted/effective are cleared
  my ($elo, $ehi) = $uid == 0 ? ($plan{effective_lo} + 0, $plan{effective_hi} + 0) : (0, 0);
  must('capset', 'capset', pack('LL', 0x20080522, 0), pack('L6', $elo, $elo, 0, $ehi, $ehi, 0));
  must('no_new_privs', 'prctl', PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) if $plan{nnp};
}

sub exec_process {
  umask(oct($plan{umask} // '022'));
  my $cwd = $plan{cwd} // '/';
  chdir($cwd) or fail("chdir to the working directory $cwd: $!");
  %ENV = ();
  for my $kv (map { $_->[0] } @{ $plan{env} }) { my ($k, $v) = split /=/, $kv, 2; $ENV{$k} = $v // ''; }
  my @args = map { $_->[0] } @{ $plan{arg} };
  { no warnings 'exec'; exec { $args[0] } @args; }
  my $err = $!;
  print STDERR "berth: exec $args[0]: $err\n";
  hard_exit(errno_is(2) ? 127 : 126);
}

# ---- the waiting parent ------------------------------------------------------------------------

# "PID STARTTIME": with the start time (field 22 of /proc/PID/stat) a reader tells a reused pid from ours
sub write_pidfile {
  my ($pid) = @_;
  my $start = '';
  if (open(my $st, '<', "/proc/$pid/stat")) { my $line = <$st>; close $st; $line =~ s/^.*\) //s; $start = (split / /, $line)[19] // ''; }
  open(my $fh, '>', "$pidFile.tmp") or fail("$pidFile: $!");
  print $fh "$pid $start";
  close $fh;
  rename("$pidFile.tmp", $pidFile) or fail("$pidFile: $!");
}

# opens a new pty in the devpts reached through `ptmx`; returns (master handle, pty number)
sub open_pty {
  my ($ptmx) = @_;
  open(my $master, '+<', $ptmx) or fail("open $ptmx: $!");
  my $unlock = pack('i', 0);
  ioctl($master, TIOCSPTLCK, $unlock) or fail("unlockpt: $!");
  my $n = pack('i', 0);
  ioctl($master, TIOCGPTN, $n) or fail("ptsname: $!");
  return ($master, unpack('i', $n));
}

sub copy_winsize {
  my ($master) = @_;
  my $ws = "\0" x 8;
  ioctl(STDIN, TIOCGWINSZ, $ws) and ioctl($master, TIOCSWINSZ, $ws);
}

# relays stdin → master and master → stdout until the pty closes
sub relay {
  my ($master) = @_;
  my ($rin, $stdinOpen) = ('', 1);
  while (1) {
    $rin = '';
    vec($rin, fileno($master), 1) = 1;
    vec($rin, 0, 1) = 1 if $stdinOpen && $plan{interactive};
    my $n = select(my $rout = $rin, undef, undef, undef);
    next if $n < 0 && errno_is(4);
    last if $n < 0;
    if (vec($rout, fileno($master), 1)) {
      my $got = sysread($master, my $buf, 65536);
      last unless $got; # EIO once the last slave fd is closed
      my $off = 0;
      while ($off < $got) { my $w = syswrite(STDOUT, $buf, $got - $off, $off); last unless defined $w; $off += $w; }
    }
    if ($stdinOpen && vec($rout, 0, 1)) {
      my $got = sysread(STDIN, my $buf, 65536);
      if (!$got) { $stdinOpen = 0; syswrite($master, "\x04"); next; } # EOF: send ^D as a terminal would
      syswrite($master, $buf);
    }
  }
}

sub wait_child {
  my ($pid) = @_;
  while (1) {
    my $r = waitpid($pid, 0);
    next if $r == -1 && errno_is(4);
    last;
  }
  return ($? & 127) ? 128 + ($? & 127) : $? >> 8;
}

sub forward_signals {
  my ($pid) = @_;
  for my $s (qw(TERM INT HUP QUIT USR1 USR2 WINCH)) { $SIG{$s} = sub { kill($s, $pid); }; }
}

# ---- run ------------------------------------------------------------------------------------------
my $tty = $plan{tty};
pipe(my $toChildR, my $toChildW) or fail("pipe: $!");
pipe(my $toParentR, my $toParentW) or fail("pipe: $!");

# The waiting parent, for run and exec alike: records the child's pid, forwards signals, gives the child a pty
# from the container's devpts (reached through `ptmx`) when asked, relays it, and exits with the child's status.
sub keep {
  my ($pid, $ptmx) = @_;
  close $toChildR; close $toParentW;
  write_pidfile($pid);
  forward_signals($pid);
  if ($tty) {
    sysread($toParentR, my $m, 1) or hard_exit(wait_child($pid)); # the child failed before its devpts
    my ($master, $n) = open_pty($ptmx);
    copy_winsize($master);
    $SIG{WINCH} = sub { copy_winsize($master); };
    syswrite($toChildW, "$n");
    close $toChildW;
    relay($master);
  } else {
    close $toChildW;
  }
  my $status = wait_child($pid);
  unlink $pidFile if $mode eq 'exec';
  hard_exit($status);
}

if ($mode eq 'run') {
  my $rootfs = $plan{rootfs} or fail('the plan has no rootfs');
  must('new pid namespace', 'unshare', CLONE_NEWPID);
  my $pid = fork() // fail("fork: $!");
  if ($pid == 0) {
    close $toChildW; close $toParentR;
    sys('prctl', PR_SET_PDEATHSIG, 9, 0, 0, 0); # the container dies with its keeper
    umask(0);
    join_cgroups();
    if ($plan{netnspath}) {
      open(my $netns, '<', $plan{netnspath}) or fail("the network namespace $plan{netnspath}: $!");
      must('joining the network namespace', 'setns', fileno($netns), CLONE_NEWNET);
      close $netns;
    }
    # (a cgroup namespace after the cgroups are joined: they become its root)
    must('new namespaces', 'unshare', CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | ($plan{netns} ? CLONE_NEWNET : 0) | ($plan{cgroupns} ? CLONE_NEWCGROUP : 0));
    must('private mounts', 'mount', 'none', '/', 0, MS_REC | MS_PRIVATE, 0);
    must('binding the rootfs', 'mount', $rootfs, $rootfs, 0, MS_BIND | MS_REC, 0);
    do_mounts($rootfs);
    my $ptyName;
    if ($tty) { # the parent opens the pty in our devpts instance (through /proc/PID/root) and sends its number
      syswrite($toParentW, "m");
      sysread($toChildR, my $n, 32) or fail('no pty from the parent');
      $ptyName = "/dev/pts/$n";
    }
    must('hostname', 'sethostname', $plan{hostname}, length($plan{hostname})) if defined $plan{hostname};
    loopback_up() if $plan{netns};
    enter_root($rootfs);
    attach_tty($ptyName) if $ptyName;
    close $toChildR; close $toParentW;
    drop_privileges();
    exec_process();
  }
  keep($pid, "/proc/$pid/root$rootfs/dev/pts/ptmx");
}

# ---- exec -----------------------------------------------------------------------------------------
my $target = $plan{target} or fail('the plan has no target pid');
my %ns;
for my $t (qw(ipc uts net pid mnt cgroup)) { open($ns{$t}, '<', "/proc/$target/ns/$t") or fail("the container is not running (/proc/$target/ns/$t: $!)"); }
must('entering the pid namespace', 'setns', fileno($ns{pid}), CLONE_NEWPID);
my $pid = fork() // fail("fork: $!");
if ($pid == 0) {
  close $toChildW; close $toParentR;
  sys('prctl', PR_SET_PDEATHSIG, 9, 0, 0, 0);
  join_cgroups(); # host paths: before entering the container's mount namespace
  for my $t (qw(ipc uts net cgroup mnt)) {
    # setns to a namespace we are already in fails with EINVAL for some types (e.g. --network host); skip those
    my $mine = readlink("/proc/self/ns/$t") // '';
    next if $mine eq (readlink("/proc/$target/ns/$t") // '');
    must("entering the $t namespace", 'setns', fileno($ns{$t}), 0);
  }
  chdir('/') or fail("chdir /: $!");
  if ($tty) {
    syswrite($toParentW, "m");
    sysread($toChildR, my $n, 32) or fail('no pty from the parent');
    attach_tty("/dev/pts/$n");
  }
  close $toChildR; close $toParentW;
  drop_privileges();
  exec_process();
}
keep($pid, "/proc/$target/root/dev/pts/ptmx");
