//! `mprpc providers zk://…`: who is registered, in both layouts — mprpc's
//! `<zk_root>/<Service>/providers/<ip:port>` and the course's
//! `/<Service>/<Method>` (data `ip:port`) — with each node's session owner,
//! the ZooKeeper session that will take it away when it ends.

use std::fmt::Write as _;
use std::time::Duration;

use mprpc::ZkClient;

/// One registered provider.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    /// "mprpc" or "course".
    layout: &'static str,
    /// Service name (full for mprpc's layout, short for the course's).
    service: String,
    /// The method, for the course's layout.
    method: String,
    /// `ip:port`.
    addr: String,
    /// The session owning the ephemeral node, in hex (0: persistent).
    owner: i64,
}

/// The table of providers (of `only` if given), as text.
pub async fn list(servers: &str, zk_root: &str, only: Option<&str>) -> Result<String, String> {
    let zk = ZkClient::start(servers, Duration::from_secs(10))
        .await
        .map_err(|e| format!("ZooKeeper at {servers}: {e}"))?;
    let mut rows = Vec::new();
    let root_top = zk_root
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    // mprpc's layout.
    for service in children(&zk, zk_root).await? {
        if only.is_some_and(|o| o != service && !service.ends_with(&format!(".{o}"))) {
            continue;
        }
        let parent = format!("{zk_root}/{service}/providers");
        for addr in children(&zk, &parent).await? {
            let owner = owner(&zk, &format!("{parent}/{addr}")).await?;
            rows.push(Row {
                layout: "mprpc",
                service: service.clone(),
                method: "*".into(),
                addr,
                owner,
            });
        }
    }
    // The course's layout: every top-level node but ZooKeeper's own and ours.
    for service in children(&zk, "/").await? {
        if service == "zookeeper" || service == root_top {
            continue;
        }
        if only.is_some_and(|o| o != service && !o.ends_with(&format!(".{service}"))) {
            continue;
        }
        for method in children(&zk, &format!("/{service}")).await? {
            let path = format!("/{service}/{method}");
            let data = match zk.get_data(&path).await {
                Ok(d) => d,
                Err(_) => continue, // gone meanwhile
            };
            let addr = String::from_utf8_lossy(&data).into_owned();
            let owner = owner(&zk, &path).await?;
            rows.push(Row {
                layout: "course",
                service: service.clone(),
                method,
                addr,
                owner,
            });
        }
    }
    let _ = zk.close().await;
    rows.sort();
    Ok(render(&rows))
}

/// A node's children, none when it does not exist.
async fn children(zk: &ZkClient, path: &str) -> Result<Vec<String>, String> {
    match zk.exists(path).await {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(_)) => zk
            .get_children(path)
            .await
            .or_else(|e| {
                if e.to_string().contains("NoNode") {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| format!("listing {path}: {e}")),
        Err(e) => Err(format!("reading {path}: {e}")),
    }
}

/// The ephemeral owner of `path` (0 when persistent or gone).
async fn owner(zk: &ZkClient, path: &str) -> Result<i64, String> {
    match zk.exists(path).await {
        Ok(stat) => Ok(stat.map_or(0, |s| s.ephemeral_owner)),
        Err(e) => Err(format!("reading {path}: {e}")),
    }
}

/// Rows as an aligned table.
fn render(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no providers registered\n".into();
    }
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let owner = if r.owner == 0 {
                "persistent".into()
            } else {
                format!("0x{:x}", r.owner)
            };
            [
                r.layout.into(),
                r.service.clone(),
                r.method.clone(),
                r.addr.clone(),
                owner,
            ]
        })
        .collect();
    let head = ["layout", "service", "method", "provider", "session owner"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in std::iter::once(head.map(String::from)).chain(cells) {
        let cols: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cols.join("  ").trim_end());
    }
    out
}
