use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = infra::cli::Cli::parse();
    infra::cli::init_logging(cli.global.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let color = cli.global.color();
    let code = match runtime.block_on(infra::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", infra::cli::render_error(&e, color));
            ExitCode::from(1)
        }
    };
    // A confirmation prompt cancelled with Ctrl-C leaves a thread reading the terminal.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}
