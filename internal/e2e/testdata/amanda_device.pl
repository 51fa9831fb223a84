# Drives Amanda's NDMP device (Amanda::Device, device-src/ndmp-device.c)
# against a Tapestry server the way Amanda's taper and recovery clerk do.
# Run by TestAmandaNDMPDevice (amanda_test.go) as the Amanda user, with
# PERL5LIB pointing at Amanda's Perl modules.
#
# Environment: AMANDA_CONFIG (the configuration: its tpchanger is chg-ndmp
# on the server's library), NDMP_DEVICE (ndmp:HOST:PORT@DRIVE), NDMP_USER,
# NDMP_PASSWORD; AMANDA_INDIRECT=1 makes write-dtcp use IndirectTCP.
#
# Commands (each prints one line per file or part, which the test checks):
#   write-blocks LABEL FILE...      TAPE_WRITE path: start, then start_file,
#                                   write_block (Xfer::Dest::Device) and
#                                   finish_file per FILE -> "file N NAME"
#   read-blocks LABEL N OUT         TAPE_READ path: seek_file N, read_block
#                                   (Xfer::Source::Device) into OUT
#   write-dtcp PARTSIZE LABELS FILE...
#                                   DirectTCP path of the taper: per FILE an
#                                   xfer into Xfer::Dest::Taper::DirectTCP
#                                   (listen, accept, write_from_connection per
#                                   part); volumes (comma-separated LABELS)
#                                   loaded through the changer, the next one
#                                   at end of medium -> "part NAME LABEL
#                                   FILENO SIZE EOM EOF"
#   read-dtcp OUT LABEL:N...        DirectTCP path of the recovery clerk:
#                                   Xfer::Source::Recovery (listen, accept,
#                                   MOVER_READ, read_to_connection) per part
#                                   into OUT, volumes loaded through the
#                                   changer -> "got LABEL N"
use strict;
use warnings;
use File::Basename;
use Amanda::Config qw( :init );
use Amanda::Debug;
use Amanda::Device qw( :constants );
use Amanda::Header;
use Amanda::Xfer qw( :constants );
use Amanda::XferServer;
use Amanda::MainLoop;
use Amanda::Changer;

$| = 1;
config_init($CONFIG_INIT_EXPLICIT_NAME, $ENV{'AMANDA_CONFIG'});
my ($cfgerr_level, @cfgerr_errors) = config_errors();
die "config: @cfgerr_errors\n" if $cfgerr_level >= $CFGERR_ERRORS;
Amanda::Debug::dbopen("server");

my $TIMESTAMP = "20261207000000";
my $fatal;    # first error seen inside a main-loop callback

sub fail {
    my ($msg) = @_;
    $fatal ||= $msg;
    Amanda::MainLoop::quit();
}

sub header {
    my ($name, $partnum) = @_;
    my $hdr = Amanda::Header->new();
    $hdr->{'type'} = $Amanda::Header::F_SPLIT_DUMPFILE;
    $hdr->{'datestamp'} = $TIMESTAMP;
    $hdr->{'dumplevel'} = 0;
    $hdr->{'name'} = "tapestry";
    $hdr->{'disk'} = "/$name";
    $hdr->{'program'} = "TAPESTRY-TEST";
    $hdr->{'partnum'} = $partnum;
    $hdr->{'totalparts'} = -1;
    return $hdr;
}

# new_device opens the device of NDMP_DEVICE with the NDMP credentials.
sub new_device {
    my $dev = Amanda::Device->new($ENV{'NDMP_DEVICE'});
    die "device: " . $dev->error_or_status() . "\n"
        unless $dev->status() == $DEVICE_STATUS_SUCCESS;
    $dev->property_set("NDMP_USERNAME", $ENV{'NDMP_USER'});
    $dev->property_set("NDMP_PASSWORD", $ENV{'NDMP_PASSWORD'});
    $dev->property_set("NDMP_AUTH", "md5");
    die "NDMP_USERNAME not set\n" unless $dev->property_get("NDMP_USERNAME") eq $ENV{'NDMP_USER'};
    return $dev;
}

# run_xfer runs an xfer to its end; on_msg sees the other messages.
sub run_xfer {
    my ($xfer, $on_msg) = @_;
    $xfer->start(sub {
        my ($src, $msg, $x) = @_;
        if ($msg->{'type'} == $XMSG_ERROR) {
            $fatal ||= "xfer: $msg->{'message'}";
        } elsif ($msg->{'type'} == $XMSG_DONE) {
            Amanda::MainLoop::quit();
        } elsif ($on_msg) {
            eval { $on_msg->($msg) };
            fail($@) if $@;
        }
    });
    Amanda::MainLoop::run();
    die "$fatal\n" if $fatal;
}

sub write_blocks {
    my ($label, @files) = @_;
    my $dev = new_device();
    $dev->start($ACCESS_WRITE, $label, $TIMESTAMP)
        or die "start: " . $dev->error_or_status() . "\n";
    for my $file (@files) {
        my $name = basename($file);
        $dev->start_file(header($name, 1))
            or die "start_file: " . $dev->error_or_status() . "\n";
        my $fileno = $dev->file();
        open(my $fh, "<", $file) or die "$file: $!\n";
        run_xfer(Amanda::Xfer->new([
            Amanda::Xfer::Source::Fd->new(fileno($fh)),
            Amanda::Xfer::Dest::Device->new($dev, 0) ]));
        close($fh);
        if ($dev->in_file()) {
            $dev->finish_file() or die "finish_file: " . $dev->error_or_status() . "\n";
        }
        print "file $fileno $name\n";
    }
    $dev->finish() or die "finish: " . $dev->error_or_status() . "\n";
}

sub read_blocks {
    my ($label, $fileno, $out) = @_;
    my $dev = new_device();
    $dev->start($ACCESS_READ, undef, undef)
        or die "start: " . $dev->error_or_status() . "\n";
    die "volume " . $dev->volume_label() . ", want $label\n" unless $dev->volume_label() eq $label;
    my $hdr = $dev->seek_file($fileno + 0)
        or die "seek_file $fileno: " . $dev->error_or_status() . "\n";
    open(my $oh, ">", $out) or die "$out: $!\n";
    run_xfer(Amanda::Xfer->new([
        Amanda::Xfer::Source::Device->new($dev),
        Amanda::Xfer::Dest::Fd->new(fileno($oh)) ]));
    close($oh) or die "$out: $!\n";
    print "read $fileno $hdr->{'disk'}\n";
    $dev->finish() or die "finish: " . $dev->error_or_status() . "\n";
}

# Volumes: the changer loads them by label, as the taper's scan does.
my ($chg, $res, $dev);

sub changer {
    $chg ||= Amanda::Changer->new();
    die "changer: $chg\n" if $chg->isa("Amanda::Changer::Error");
    return $chg;
}

# load_volume releases the current volume (if any), loads LABEL and calls
# $cb with the new device, all in the main loop.
sub load_volume {
    my ($label, $cb) = @_;
    my $load = sub {
        changer()->load(label => $label, res_cb => sub {
            my ($err, $r) = @_;
            return fail("load $label: $err") if $err;
            ($res, $dev) = ($r, $r->{'device'});
            return fail("device of $label: " . $dev->error_or_status())
                if $dev->status() != $DEVICE_STATUS_SUCCESS && $dev->status() != $DEVICE_STATUS_VOLUME_UNLABELED;
            eval { $cb->($dev) };
            fail($@) if $@;
        });
    };
    return $load->() unless $res;
    $dev->finish();
    my $old = $res;
    $res = undef;
    $old->release(finished_cb => sub {
        my ($err) = @_;
        return fail("release: $err") if $err;
        $load->();
    });
}

sub in_main_loop {
    my ($sub) = @_;
    Amanda::MainLoop::call_later(sub { eval { $sub->() }; fail($@) if $@; });
    Amanda::MainLoop::run();
    die "$fatal\n" if $fatal;
}

sub release_volume {
    return unless $res;
    $dev->finish();
    in_main_loop(sub { $res->release(finished_cb => sub { Amanda::MainLoop::quit(); }) });
    $res = undef;
}

sub write_dtcp {
    my ($partsize, $labels, @files) = @_;
    my @labels = split(/,/, $labels);
    my $label = shift @labels;
    in_main_loop(sub {
        load_volume($label, sub {
            my ($d) = @_;
            # The configuration sets INDIRECT NO (DirectTCP proper);
            # AMANDA_INDIRECT=1 restores Amanda's default, IndirectTCP.
            $d->property_set("INDIRECT", 1) if $ENV{'AMANDA_INDIRECT'};
            die "INDIRECT is " . ($d->property_get("INDIRECT") ? "on" : "off") . "\n"
                if !$d->property_get("INDIRECT") != !$ENV{'AMANDA_INDIRECT'};
            $d->start($ACCESS_WRITE, $label, $TIMESTAMP)
                or die "start $label: " . $d->error_or_status() . "\n";
            Amanda::MainLoop::quit();
        });
    });
    for my $file (@files) {
        my $name = basename($file);
        open(my $fh, "<", $file) or die "$file: $!\n";
        my $dest = Amanda::Xfer::Dest::Taper::DirectTCP->new($dev, $partsize + 0);
        my $partnum = 1;
        my $next_volume = sub {
            $label = shift @labels or die "no volume left after $label\n";
            load_volume($label, sub {
                my ($d) = @_;
                $dest->use_device($d);
                $d->start($ACCESS_WRITE, $label, $TIMESTAMP)
                    or die "start $label: " . $d->error_or_status() . "\n";
                $dest->start_part(0, header($name, $partnum));
            });
        };
        run_xfer(Amanda::Xfer->new([ Amanda::Xfer::Source::Fd->new(fileno($fh)), $dest ]), sub {
            my ($msg) = @_;
            if ($msg->{'type'} == $XMSG_READY) {
                $dest->start_part(0, header($name, $partnum));
            } elsif ($msg->{'type'} == $XMSG_PART_DONE) {
                print "part $name $label $msg->{'fileno'} $msg->{'size'} $msg->{'eom'} $msg->{'eof'}\n";
                $partnum++ if $msg->{'size'} > 0;
                return if $msg->{'eof'};
                return $next_volume->() if $msg->{'eom'};
                $dest->start_part(0, header($name, $partnum));
            }
        });
        close($fh);
    }
    release_volume();
}

# read_dtcp reads each part in an xfer and an NDMP session of its own.
# Amanda 3.5.1 starts the mover (MOVER_READ) as it accepts, so a part of a
# few MiB is read to its file mark before read_to_connection runs; that then
# continues the paused mover, which pauses at the mark again, and the
# second NOTIFY_MOVER_PAUSED stays queued in the device's NDMP connection,
# where the next read_to_connection takes it for the end of its part and
# stops early. Within one xfer it also counts the bytes of earlier volumes
# again into the window offset after use_device. Neither depends on the
# server; a session per part keeps the test deterministic.
sub read_dtcp {
    my ($out, @parts) = @_;
    open(my $oh, ">", $out) or die "$out: $!\n";
    my $label = "";
    for my $part (@parts) {
        my ($l, $n) = split(/:/, $part);
        if ($l ne $label) {
            $label = $l;
            in_main_loop(sub {
                load_volume($l, sub {
                    my ($d) = @_;
                    $d->finish();
                    Amanda::MainLoop::quit();
                });
            });
        }
        my $d = new_device();
        $d->start($ACCESS_READ, undef, undef) or die "start: " . $d->error_or_status() . "\n";
        die "volume " . $d->volume_label() . ", want $l\n" unless $d->volume_label() eq $l;
        $d->seek_file($n + 0) or die "seek_file $n: " . $d->error_or_status() . "\n";
        my $src = Amanda::Xfer::Source::Recovery->new($d);
        run_xfer(Amanda::Xfer->new([ $src, Amanda::Xfer::Dest::Fd->new(fileno($oh)) ]), sub {
            my ($msg) = @_;
            if ($msg->{'type'} == $XMSG_READY) {
                $src->start_part($d);
            } elsif ($msg->{'type'} == $XMSG_PART_DONE) {
                print "got $label $n\n";
                $src->start_part(undef);
            }
        });
        $d->finish() or die "finish: " . $d->error_or_status() . "\n";
    }
    close($oh) or die "$out: $!\n";
    release_volume();
}

my $cmd = shift @ARGV;
if ($cmd eq "write-blocks") {
    write_blocks(@ARGV);
} elsif ($cmd eq "read-blocks") {
    read_blocks(@ARGV);
} elsif ($cmd eq "write-dtcp") {
    write_dtcp(@ARGV);
} elsif ($cmd eq "read-dtcp") {
    read_dtcp(@ARGV);
} else {
    die "unknown command $cmd\n";
}
print "ok\n";
