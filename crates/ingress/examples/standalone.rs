//! The ingress alone, in front of one upstream, on one single-threaded
//! runtime: what `bench/ingress-instructions.sh` runs under callgrind to
//! count the ingress's own instructions per request (`chaoslab up` cannot
//! run under valgrind, which lacks `pidfd_open`). Default configuration,
//! default limits, the system allocator. Stops on Ctrl-C.
//!
//!   cargo run --release -p chaoslab-ingress --example standalone -- 127.0.0.1:8002 127.0.0.1:8001

use std::net::SocketAddr;
use std::sync::Arc;

use chaoslab_ingress::{IngressMetrics, Upstream, UpstreamSet};

fn main() {
    let usage = "usage: standalone LISTEN_ADDR UPSTREAM_ADDR";
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (
        args.next().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.next().and_then(|a| a.parse::<SocketAddr>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("cannot start a runtime", e));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}"), e));
        let set: UpstreamSet = Arc::new(vec![Upstream {
            id: "upstream".into(),
            addr: upstream,
        }]);
        let (_keep, upstreams) = tokio::sync::watch::channel(set);
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let metrics = Arc::new(IngressMetrics::default());
        if let Err(e) =
            chaoslab_ingress::run(listener, upstreams, Default::default(), metrics, stop).await
        {
            fail("the ingress stopped", e);
        }
    });
}

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("standalone: {what}: {error}");
    std::process::exit(1)
}
