fn main() -> std::process::ExitCode {
    meshfleet::cli::main()
}
