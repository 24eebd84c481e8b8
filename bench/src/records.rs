//! Years of usage records for `bench/scale.sh`: writes N realistic records
//! (50 users, a handful of models, endpoints and upstreams, OpenAI-shaped
//! request ids), spread evenly over the last DAYS days, through the usage
//! writer's own `write_batch`, then prints what they cost on disk, as each
//! backend counts it (SQLite's dbstat, PostgreSQL's relation sizes,
//! InnoDB's data and index lengths after ANALYZE).
//! Usage: bench_records DATABASE_URL N [DAYS]

use chatgate::usage::{writer, UsageRecord};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 1000;

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// Bytes in use per table and index.
fn sizes(conn: &mut chatgate::db::DbConnection) -> Vec<Size> {
    use chatgate::db::Dialect;
    let query = match conn.dialect() {
        // Pages, not file size.
        Dialect::Sqlite => {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                .expect("checkpoint");
            "SELECT name, CAST(SUM(pgsize - unused) AS BIGINT) AS bytes FROM dbstat \
             GROUP BY name ORDER BY name"
        }
        // Each table with its indexes and TOAST.
        Dialect::Postgres => {
            conn.batch_execute("VACUUM ANALYZE").expect("vacuum");
            "SELECT CAST(relname AS TEXT) AS name, pg_total_relation_size(oid) AS bytes FROM pg_class \
             WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname"
        }
        // InnoDB's own estimate, fresh after ANALYZE.
        Dialect::Mysql => {
            conn.batch_execute(
                "ANALYZE TABLE usage_records, usage_daily, usage_names, users, objects, charges",
            )
            .expect("analyze");
            "SELECT CAST(table_name AS CHAR) AS name, CAST(data_length + index_length AS SIGNED) AS bytes \
             FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name"
        }
    };
    diesel::sql_query(query).load(conn).expect("table sizes")
}

/// A small deterministic generator: the same records every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(rng: &mut Rng, at: chrono::NaiveDateTime, users: &[Arc<str>]) -> UsageRecord {
    const MODELS: [&str; 6] = [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1",
        "o4-mini",
        "claude-sonnet-4-5",
        "text-embedding-3-small",
    ];
    let upstreams: [Arc<str>; 2] = [Arc::from("openai"), Arc::from("azure-eu")];
    let model = MODELS[rng.below(MODELS.len() as u64) as usize];
    let endpoint = match model {
        "text-embedding-3-small" => "/embeddings",
        "claude-sonnet-4-5" => "/messages",
        _ if rng.below(10) == 0 => "/responses",
        _ => "/chat/completions",
    };
    let failed = rng.below(100) == 0;
    let prompt = 50 + rng.below(4000) as i64;
    let completion = if endpoint == "/embeddings" {
        0
    } else {
        10 + rng.below(900) as i64
    };
    let cached = if rng.below(3) == 0 { prompt / 2 } else { 0 };
    let user = rng.below(users.len() as u64) as usize;
    let mut r = UsageRecord {
        at,
        request_id: Some(format!("req_{:016x}{:016x}", rng.next(), rng.next()).into()),
        user: users[user].clone(),
        method: "POST",
        endpoint: endpoint.to_owned(),
        model: Some(model.to_owned()),
        upstream: Some(upstreams[rng.below(2) as usize].clone()),
        status: if failed { 429 } else { 200 },
        stream: endpoint != "/embeddings" && rng.below(2) == 0,
        latency_ms: 200 + rng.below(8000) as i64,
        // The client family, as the gateway reads it (#32); one in five
        // from a client it does not know.
        client: ["claude-code", "codex", "openai-python", "browser", ""][rng.below(5) as usize],
        // The key it came through (#33, three a user) and the user's
        // team: one of eight, or none for one user in five.
        key: Arc::from(["default", "ci", "laptop"][rng.below(3) as usize]),
        team: (user % 10 < 8).then(|| Arc::from(format!("team-{}", user % 10).as_str())),
        ..UsageRecord::default()
    };
    if !failed {
        r.prompt_tokens = Some(prompt);
        r.completion_tokens = Some(completion);
        r.total_tokens = Some(prompt + completion);
        r.cached_tokens = Some(cached);
        r.cost_nano_usd = Some(prompt * 150 + completion * 600);
    }
    r
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, n, days) = match &args[..] {
        [_, url, n] => (url.clone(), n.parse::<u64>().expect("N"), 400),
        [_, url, n, days] => (
            url.clone(),
            n.parse::<u64>().expect("N"),
            days.parse::<i64>().expect("DAYS"),
        ),
        _ => panic!("usage: bench_records DATABASE_URL N [DAYS]"),
    };
    let mut conn = chatgate::db::connect_migrated(&url).expect("database");
    let before = sizes(&mut conn);
    let users: Vec<Arc<str>> = (0..50).map(|i| Arc::from(format!("user{i:02}"))).collect();
    let end = chatgate::db::now();
    let span_ms = days * 86_400_000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let back = span_ms - (i as i64 * span_ms / n.max(1) as i64);
        let at = end - chrono::Duration::milliseconds(back);
        batch.push(record(&mut rng, at, &users));
        if batch.len() == BATCH || i + 1 == n {
            writer::write_batch(&mut conn, &batch).expect("write");
            batch.clear();
        }
    }
    let took = started.elapsed().as_secs_f64();
    let after = sizes(&mut conn);
    let grown = |name: &str| {
        let of = |s: &[Size]| s.iter().find(|x| x.name == name).map_or(0, |x| x.bytes);
        of(&after) - of(&before)
    };
    let total: i64 =
        after.iter().map(|s| s.bytes).sum::<i64>() - before.iter().map(|s| s.bytes).sum::<i64>();
    println!(
        "records {n} written in {took:.1} s ({:.0}/s)",
        n as f64 / took
    );
    println!("bytes per record {:.1}", total as f64 / n as f64);
    for s in &after {
        let g = grown(&s.name);
        if g > 0 {
            println!("  {:<32} {:>7.1}", s.name, g as f64 / n as f64);
        }
    }
}
