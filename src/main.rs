fn main() {
    std::process::exit(git_sops::cli::main());
}
