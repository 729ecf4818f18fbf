//! Regenerates the man pages in docs/man from the command-line definition:
//! `cargo run --example update-man`. The test `man_pages_in_docs_match_the_code` fails when they are stale.

use std::path::PathBuf;

use clap::CommandFactory;
use iap_token::cli::Cli;

/// The man page of `iap-token` and of each subcommand, rendered with clap_mangen: (file name, roff).
pub fn man_pages() -> Vec<(String, String)> {
    let mut command = Cli::command();
    command.build();
    let mut pages = Vec::new();
    let mut render = |name: String, command: clap::Command| {
        let mut roff = Vec::new();
        clap_mangen::Man::new(command).render(&mut roff).expect("rendering to memory cannot fail");
        pages.push((format!("{name}.1"), String::from_utf8(roff).expect("roff is UTF-8")));
    };
    render("iap-token".into(), command.clone());
    for sub in command.get_subcommands() {
        let name = format!("iap-token-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        render(name, sub.clone().name(leaked));
    }
    pages
}

pub fn man_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/man")
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let dir = man_dir();
    std::fs::create_dir_all(&dir)?;
    for (name, content) in man_pages() {
        std::fs::write(dir.join(&name), content)?;
        println!("wrote docs/man/{name}");
    }
    Ok(())
}
