//! `--help` and `--bash-completion` output, laid out as ghjm/cmdline prints them from the table.

use std::fmt::Write as _;

use super::entity::{ENTITIES, EntitySpec, Section};

/// Entities not runnable yet that are listed in full all the same: they are being built
/// (issue 12) and will run.
const LISTED_WHILE_BUILT: [&str; 2] = ["command-service", "ip-router"];

/// Whether `--help` and the completion offer the entity with its parameters; any other
/// (visible) entity gets one line saying it is not available.
fn offered(e: &EntitySpec) -> bool {
    e.supported || LISTED_WHILE_BUILT.contains(&e.name)
}

/// Why an entity is not available, for its one line in `--help`.
fn absent_reason(e: &EntitySpec) -> &'static str {
    match e.name {
        "work-python" => "deprecated in Go, which refuses it at startup too",
        "work-kubernetes" => "Kubernetes work units are not implemented",
        _ => "not implemented",
    }
}

/// The `--help` text for a program invoked as `progname` (Go uses the base name of `argv[0]`).
pub fn help_text(progname: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "Usage: {progname} [--<action> [<param>=<value> ...] ...]\n\n   --help: Show this help\n\n   \
         --config <filename>: Load additional config options from a YAML file\n\n   \
         --config-v2: Read --config files in the version 2 format (a YAML mapping such as \
         tcp-listeners:); a file that starts with version: 2 needs no flag\n\n   \
         --bash-completion: Generate a completion script for the bash shell\n         \
         Run \". <({progname} --bash-completion)\" to activate now\n\n"
    );
    let mut sections: Vec<Section> = vec![Section::General];
    for e in ENTITIES.iter().filter(|e| !e.hidden) {
        if !sections.contains(&e.section) {
            sections.push(e.section);
        }
    }
    sections.sort();
    for section in sections {
        if !section.heading().is_empty() {
            let _ = write!(out, "{}\n\n", section.heading());
        }
        for required in [true, false] {
            ENTITIES
                .iter()
                .filter(|e| e.section == section && !e.hidden && e.required == required)
                .for_each(|e| entity_help(&mut out, e));
        }
    }
    out
}

fn entity_help(out: &mut String, e: &EntitySpec) {
    if !offered(e) {
        let summary = e.description.lines().next().unwrap_or("");
        let _ = write!(
            out,
            "   --{}: {summary} (not available in this implementation: {})\n\n",
            e.name,
            absent_reason(e)
        );
        return;
    }
    let _ = write!(out, "   --{}", e.name);
    if !e.description.is_empty() {
        let _ = write!(out, ": {}", e.description);
    }
    if e.required {
        out.push_str(" (required)");
    }
    out.push('\n');
    for p in e.params {
        let _ = write!(out, "      {}=<{}>", p.name, p.kind.help_type());
        if !p.description.is_empty() {
            let _ = write!(out, ": {}", p.description);
        }
        let mut extras: Vec<String> = Vec::new();
        if p.required {
            extras.push("required".to_owned());
        }
        if let Some(d) = p.default.filter(|d| !d.is_empty()) {
            extras.push(format!("default: {d}"));
        }
        if !extras.is_empty() {
            let _ = write!(out, " ({})", extras.join(", "));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// The `--bash-completion` script for a program invoked as `cmd` (base name).
pub fn bash_completion(cmd: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "_{cmd}()\n{{\n  local cur prevdashed count DASHCMDS\n  cur=${{COMP_WORDS[COMP_CWORD]}}\n  \
         count=$((COMP_CWORD-1))\n  while [[ $count > 1 && ! ${{COMP_WORDS[$count]}} == --* ]]; do\n    \
         count=$((count-1))\n  done\n  prevdashed=${{COMP_WORDS[$count]}}\n"
    );
    let mut actions: Vec<String> = [
        "--help",
        "--bash-completion",
        "--config",
        "-c",
        "--config-v2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    actions.extend(
        ENTITIES
            .iter()
            .filter(|e| e.hidden || offered(e))
            .map(|e| format!("--{}", e.name)),
    );
    // Go prints "  else" without a newline; kept so the script is byte-identical.
    let _ = write!(
        out,
        "  DASHCMDS=\"{}\"\n  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W \"$DASHCMDS\" -- ${{cur}}))\n  \
         else    case ${{prevdashed}} in\n      -c|--config)\n        COMPREPLY=($(compgen -f -- ${{cur}}))\n        ;;\n",
        actions.join(" ")
    );
    for e in ENTITIES.iter().filter(|e| !e.hidden && offered(e)) {
        let params: Vec<String> = e.params.iter().map(|p| format!("{}=", p.name)).collect();
        let _ = write!(
            out,
            "      --{})\n        COMPREPLY=($(compgen -W \"{}\" -- ${{cur}}))\n        ;;\n",
            e.name,
            params.join(" ")
        );
    }
    let _ = write!(
        out,
        "      *)\n        COMPREPLY=($(compgen -W \"$DASHCMDS\" -- ${{cur}}))\n        ;;\n    esac\n  fi\n  \
         [[ $COMPREPLY == *= ]] && compopt -o nospace\n}}\ncomplete -F _{cmd} {cmd}\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_starts_like_go_and_lists_every_visible_entity() {
        let h = help_text("receptor");
        assert!(h.starts_with(
            "Usage: receptor [--<action> [<param>=<value> ...] ...]\n\n   --help: Show this help\n\n"
        ));
        assert!(h.contains(
            "   --node: Specifies the node configuration of this instance (required)\n      \
             id=<string>: Node ID. Defaults to the local hostname.\n      \
             datadir=<string>: Directory in which to store node data. (default: /tmp/receptor)\n"
        ));
        assert!(h.contains(
            "      port=<int>: Local TCP port to listen on (required)\n      tls=<string>: Name of TLS server config\n      cost=<float64>: Connection cost (weight) (default: 1.0)\n      nodecost=<JSON dict of string to float64>: Per-node costs\n      allowedpeers=<[]string (may be repeated)>: Peer node IDs to allow via this connection\n\n"
        ));
        for e in ENTITIES {
            assert_eq!(
                h.contains(&format!("   --{}", e.name)),
                !e.hidden,
                "{}",
                e.name
            );
        }
        let order: Vec<usize> = [
            "   --node:",
            "   --local-only:",
            "   --control-service:",
            "Commands that configure resources",
            "   --tls-server:",
            "Commands to configure back-ends",
            "   --udp-listener:",
            "Commands to configure services",
            "   --ip-router:",
            "Commands to configure workers",
            "   --work-python:",
            "Commands to generate certificates",
            "   --cert-signreq:",
        ]
        .iter()
        .filter_map(|needle| h.find(needle))
        .collect();
        assert_eq!(order.len(), 13);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn absent_entities_get_one_line_and_no_completion() {
        let h = help_text("receptor");
        let line = "   --work-kubernetes: Run a worker using Kubernetes (not available in this \
                    implementation: Kubernetes work units are not implemented)\n\n";
        assert!(h.contains(line), "{h}");
        assert!(!h.contains("kubeconfig=<"));
        assert!(h.contains("   --work-python: Run a worker using a Python plugin (not available"));
        assert!(h.contains("   --command-service: Run an interactive command"));
        assert!(h.contains("   --cert-init: Initialize PKI CA\n      commonname=<string>"));
        let b = bash_completion("receptor");
        assert!(
            !b.contains("--work-kubernetes") && !b.contains("--work-python"),
            "{b}"
        );
        assert!(b.contains(" --ip-router ") && b.contains(" --config-v2 "));
    }

    #[test]
    fn completion_mentions_hidden_entity_only_in_the_command_list() {
        let b = bash_completion("receptor");
        assert!(b.starts_with("_receptor()\n{\n"));
        assert!(b.contains("--command-runner"));
        assert!(!b.contains("      --command-runner)"));
        assert!(b.contains("      --tcp-peer)\n        COMPREPLY=($(compgen -W \"address= redial= tls= cost= allowedpeers=\" -- ${cur}))\n"));
        assert!(b.ends_with("complete -F _receptor receptor\n"));
    }
}
