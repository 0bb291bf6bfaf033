//! Typed conversion of the entities that parse but are not run yet (services, workers, certs).

use super::build::{Checks, Known, Phase, narrow, token_expiration};
use super::error::ConfigError;
use super::extra::{
    CertInitCfg, CertMakeReqCfg, CertSignReqCfg, CommandRunnerCfg, CommandServiceCfg, IpRouterCfg,
    MetricsCfg, TcpClientCfg, TcpServerCfg, UdpClientCfg, UdpServerCfg, UnixSocketClientCfg,
    UnixSocketServerCfg, WorkCommandCfg, WorkKubernetesCfg, WorkPythonCfg, WorkRemoteCfg,
    WorkSigningCfg, WorkVerificationCfg,
};
use super::model::{Command, Config};
use super::raw::RawEntity;

/// Adds a services/workers entity to `cfg`. `work_types` are the types registered so far (Go
/// pre-registers `remote`); a repeat fails at Run like Go's `RegisterWorker`.
pub(crate) fn add(
    cfg: &mut Config,
    raw: &RawEntity,
    known: &Known,
    checks: &mut Checks,
    work_types: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut register = |work_type: &str, checks: &mut Checks| {
        if work_types.iter().any(|t| t == work_type) {
            checks.fail(
                Phase::Run,
                format!("work type {work_type} already registered"),
            );
        } else {
            work_types.push(work_type.to_owned());
        }
    };
    match raw.spec.name {
        "tcp-server" => cfg.tcp_servers.push(TcpServerCfg {
            port: narrow(raw, "port")?,
            bind_addr: raw.str("bindaddr"),
            remote_node: raw.str("remotenode"),
            remote_service: raw.str("remoteservice"),
            tls_server: raw.opt_str("tlsserver"),
            tls_client: raw.opt_str("tlsclient"),
        }),
        "tcp-client" => cfg.tcp_clients.push(TcpClientCfg {
            service: raw.str("service"),
            address: raw.str("address"),
            tls_server: raw.opt_str("tlsserver"),
            tls_client: raw.opt_str("tlsclient"),
        }),
        "udp-server" => cfg.udp_servers.push(UdpServerCfg {
            port: narrow(raw, "port")?,
            bind_addr: raw.str("bindaddr"),
            remote_node: raw.str("remotenode"),
            remote_service: raw.str("remoteservice"),
        }),
        "udp-client" => cfg.udp_clients.push(UdpClientCfg {
            service: raw.str("service"),
            address: raw.str("address"),
        }),
        "unix-socket-server" => cfg.unix_socket_servers.push(UnixSocketServerCfg {
            filename: raw.str("filename"),
            permissions: narrow(raw, "permissions")?,
            remote_node: raw.str("remotenode"),
            remote_service: raw.str("remoteservice"),
            tls: raw.opt_str("tls"),
        }),
        "unix-socket-client" => cfg.unix_socket_clients.push(UnixSocketClientCfg {
            service: raw.str("service"),
            filename: raw.str("filename"),
            tls: raw.opt_str("tls"),
        }),
        "command-service" => cfg.command_services.push(CommandServiceCfg {
            service: raw.str("service"),
            command: raw.str("command"),
            tls: raw.opt_str("tls"),
        }),
        "ip-router" => cfg.ip_routers.push(IpRouterCfg {
            network_name: raw.str("networkname"),
            interface: raw.opt_str("interface"),
            local_net: raw.str("localnet"),
            routes: raw.str("routes"),
        }),
        "work-command" => {
            let w = WorkCommandCfg {
                work_type: raw.str("worktype"),
                command: raw.str("command"),
                params: raw.str("params"),
                allow_runtime_params: raw.bool("allowruntimeparams"),
                verify_signature: raw.bool("verifysignature"),
            };
            if w.verify_signature && !known.has_verification_key {
                checks.fail(
                    Phase::Run,
                    format!(
                        "VerifySignature for work command '{}' is true, but the work \
                         verification public key is not specified",
                        w.work_type
                    ),
                );
            }
            register(&w.work_type, checks);
            cfg.work_commands.push(w);
        }
        "work-kubernetes" => {
            let w = WorkKubernetesCfg {
                work_type: raw.str("worktype"),
                namespace: raw.str("namespace"),
                image: raw.str("image"),
                command: raw.str("command"),
                params: raw.str("params"),
                auth_method: raw.str("authmethod"),
                kube_config: raw.str("kubeconfig"),
                pod: raw.str("pod"),
                allow_runtime_auth: raw.bool("allowruntimeauth"),
                allow_runtime_command: raw.bool("allowruntimecommand"),
                allow_runtime_params: raw.bool("allowruntimeparams"),
                allow_runtime_pod: raw.bool("allowruntimepod"),
                delete_pod_on_restart: raw.bool("deletepodonrestart"),
                stream_method: raw.str("streammethod"),
                verify_signature: raw.bool("verifysignature"),
            };
            register(&w.work_type, checks);
            cfg.work_kubernetes.push(w);
        }
        "work-python" => cfg.work_python.push(WorkPythonCfg {
            work_type: raw.str("worktype"),
            plugin: raw.str("plugin"),
            function: raw.str("function"),
            config: raw.any_map("config"),
        }),
        "work-signing" => {
            cfg.work_signing = Some(WorkSigningCfg {
                private_key: raw.str("privatekey"),
                token_expiration: token_expiration(raw, checks),
            });
        }
        "work-remote" => {
            let text = raw.str("unreachabletimeout");
            let parsed = super::goparse::parse_duration(&text)
                .ok()
                .filter(|d| d.nanos >= 0);
            match parsed {
                Some(d) => {
                    cfg.work_remote = Some(WorkRemoteCfg {
                        unreachable_timeout: d.to_std().filter(|d| !d.is_zero()),
                    });
                }
                None => checks.fail(
                    Phase::Prepare,
                    "failed to parse UnreachableTimeout -- valid examples include '5m', '1h', \
                     '0' (wait forever)",
                ),
            }
        }
        "metrics" => {
            let m = MetricsCfg {
                bind_addr: raw.str("bindaddr"),
                port: narrow(raw, "port")?,
                tls: raw.opt_str("tls"),
            };
            known.check_tls(checks, m.tls.as_ref(), true);
            cfg.metrics.push(m);
        }
        "work-verification" => {
            cfg.work_verification = Some(WorkVerificationCfg {
                public_key: raw.str("publickey"),
            });
        }
        "command-runner" => {
            cfg.command_runner = Some(CommandRunnerCfg {
                command: raw.str("command"),
                params: raw.str("params"),
                unit_dir: raw.str("unitdir"),
            });
        }
        // Exclusive entities never reach a run config; `version` has no fields.
        _ => {}
    }
    Ok(())
}

/// The command for an exclusive entity (`version`, `cert-*`).
pub(crate) fn exclusive(raw: &RawEntity) -> Result<Command, ConfigError> {
    let opt_list = |name: &str| raw.str_list(name).unwrap_or_default();
    Ok(match raw.spec.name {
        "cert-init" => Command::CertInit(CertInitCfg {
            common_name: raw.str("commonname"),
            bits: narrow(raw, "bits")?,
            not_before: raw.opt_str("notbefore"),
            not_after: raw.opt_str("notafter"),
            out_cert: raw.str("outcert"),
            out_key: raw.str("outkey"),
        }),
        "cert-makereq" => Command::CertMakeReq(CertMakeReqCfg {
            common_name: raw.str("commonname"),
            bits: narrow(raw, "bits")?,
            dns_name: opt_list("dnsname"),
            ip_address: opt_list("ipaddress"),
            node_id: opt_list("nodeid"),
            out_req: raw.str("outreq"),
            in_key: raw.opt_str("inkey"),
            out_key: raw.opt_str("outkey"),
        }),
        "cert-signreq" => Command::CertSignReq(CertSignReqCfg {
            req: raw.str("req"),
            ca_cert: raw.str("cacert"),
            ca_key: raw.str("cakey"),
            not_before: raw.opt_str("notbefore"),
            not_after: raw.opt_str("notafter"),
            out_cert: raw.str("outcert"),
            verify: raw.bool("verify"),
        }),
        _ => Command::Version,
    })
}
