//! `mediaseal-room-worker`: the process of one video room. Spawned by the server; speaks the
//! control protocol on stdin/stdout and logs to stderr. See `docs/ROOMS.md`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mediaseal_room_worker::{WorkerConfig, WorkerExit, harden_process, log_hardening, run};
use mediaseal_rooms::room::{DtlsChoice, RoomConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dtls {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
    Auto,
}

/// One video room's media process: owns the room's UDP sockets, every participant's DTLS-SRTP
/// connection and keys; controlled over length-prefixed JSON frames on stdin/stdout.
#[derive(Debug, Parser)]
#[command(name = "mediaseal-room-worker", version)]
struct Args {
    /// The room's SID (RM…).
    #[arg(long)]
    room_sid: String,
    /// UDP address to bind and offer as a host ICE candidate (repeatable; port 0 = any free
    /// port). Must be an address participants can reach, not 0.0.0.0.
    #[arg(long = "udp", required = true)]
    udp: Vec<SocketAddr>,
    /// Participants admitted at once (MaxParticipants).
    #[arg(long, default_value_t = 50)]
    max_participants: usize,
    /// Tracks published at once in the room.
    #[arg(long, default_value_t = 128)]
    max_published_tracks: usize,
    /// Answer as an ICE-lite agent.
    #[arg(long)]
    ice_lite: bool,
    /// DTLS version.
    #[arg(long, value_enum, default_value = "1.2")]
    dtls: Dtls,
    /// Minimum interval between keyframe requests to one publisher track layer, in ms.
    #[arg(long, default_value_t = 500)]
    keyframe_interval_ms: u64,
    /// End the room this many seconds after the last participant left.
    #[arg(long)]
    empty_room_timeout: Option<u64>,
    /// End the room this many seconds after start if nobody joined.
    #[arg(long)]
    unused_room_timeout: Option<u64>,
    /// Remove a participant after this many seconds (0 = never).
    #[arg(long, default_value_t = 14_400)]
    max_participant_duration: u64,
    /// Refuse to run if memory cannot be locked (instead of warning).
    #[arg(long)]
    require_mlock: bool,
}

fn main() -> ExitCode {
    // Before anything else: media plaintext must never reach a core file or swap.
    let hardening = harden_process();

    // stderr only: stdout carries the control frames.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,str0m=warn,dimpl=warn")
            }),
        )
        .init();
    log_hardening(&hardening);

    let args = Args::parse();
    if args.require_mlock && !hardening.memory_locked {
        eprintln!(
            "mediaseal-room-worker: memory could not be locked and --require-mlock is set: {}",
            hardening
                .memory_lock_error
                .as_deref()
                .unwrap_or("unknown error")
        );
        return ExitCode::from(3);
    }

    let mut room = RoomConfig::new(args.room_sid);
    room.max_participants = args.max_participants;
    room.max_published_tracks = args.max_published_tracks;
    room.ice_lite = args.ice_lite;
    room.dtls = match args.dtls {
        Dtls::V12 => DtlsChoice::Dtls12,
        Dtls::V13 => DtlsChoice::Dtls13,
        Dtls::Auto => DtlsChoice::Auto,
    };
    room.keyframe_request_interval = Duration::from_millis(args.keyframe_interval_ms);
    room.empty_room_timeout = args.empty_room_timeout.map(Duration::from_secs);
    room.unused_room_timeout = args.unused_room_timeout.map(Duration::from_secs);
    room.max_participant_duration = (args.max_participant_duration > 0)
        .then(|| Duration::from_secs(args.max_participant_duration));

    let config = WorkerConfig {
        room,
        bind: args.udp,
    };
    match run(
        config,
        hardening,
        std::io::stdin(),
        std::io::stdout().lock(),
    ) {
        Ok(WorkerExit::RoomEnded | WorkerExit::ControlClosed) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("mediaseal-room-worker: {e}");
            ExitCode::from(2)
        }
    }
}
