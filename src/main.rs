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
    match runtime.block_on(infra::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", infra::cli::render_error(&e, color));
            ExitCode::from(1)
        }
    }
}
