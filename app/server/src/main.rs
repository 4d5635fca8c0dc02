fn main() -> std::process::ExitCode {
    sluice_server::cli::main()
}
