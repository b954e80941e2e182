//! The `pulsestream` binary: parses the command line and runs it.

fn main() -> std::process::ExitCode {
    pulsestream::cli::main()
}
