//! Transform engine benchmark: `cargo bench --bench transform`.
//!
//! Applies a realistic 10-pair contact mapping (names split, email normalized, address
//! concatenated from three fields, epoch-millisecond dates, ...) to 100 000 synthetic contact
//! records on one thread and reports records/s, once without and once with a `phone_e164` pair.
//! Every record is checked to transform without errors before timing.

use std::hint::black_box;
use std::time::Instant;

use fluxcascade::transform::{self, Context, Pipeline};

const RECORDS: usize = 100_000;
const PASSES: u32 = 5;

/// Source fields of a synthetic contact record.
const FULL_NAME: usize = 0;
const EMAIL: usize = 1;
const COMPANY: usize = 2;
const STREET: usize = 3;
const CITY: usize = 4;
const STATE: usize = 5;
const ZIP: usize = 6;
const CREATED: usize = 7;
const NOTES: usize = 8;
const PHONE: usize = 9;

/// A field pair: its source fields and its pipeline.
struct Pair {
    sources: Vec<usize>,
    pipeline: Pipeline,
}

fn pair(sources: &[usize], expr: &str) -> Pair {
    let pipeline = transform::parse(expr).expect("benchmark pipeline parses");
    transform::check_inputs(&pipeline, sources.len()).expect("benchmark pipeline fits its sources");
    Pair {
        sources: sources.to_vec(),
        pipeline,
    }
}

/// The 10-pair mapping; with `phone`, the notes pair (an identity) becomes a phone pair.
fn mapping(phone: bool) -> Vec<Pair> {
    let mut pairs = vec![
        pair(&[FULL_NAME], "split_name(part=first)"),
        pair(&[FULL_NAME], "split_name(part=last)"),
        pair(&[EMAIL], "lowercase|trim"),
        pair(&[COMPANY], "uppercase"),
        pair(&[STREET, CITY, ZIP], "concatenate(sep=\", \")"),
        pair(&[CITY], "trim"),
        pair(&[STATE], "uppercase"),
        pair(&[ZIP], "trim"),
        pair(&[CREATED], "date_iso"),
    ];
    pairs.push(if phone {
        pair(&[PHONE], "phone_e164(region=US)")
    } else {
        pair(&[NOTES], "")
    });
    pairs
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "John", "Mary", "José", "Aisha", "Wei", "Olga", "Liam", "Zoë", "Mohammed", "Priya", "Jean-Luc", "Ana",
];
const MIDDLE: &[&str] = &["Ann", "Lee", "Marie", "J.", "Luther"];
const LAST: &[&str] = &[
    "Smith",
    "Álvarez",
    "O'Brien",
    "Nguyen",
    "Kowalski",
    "Okafor",
    "Johansson",
    "Müller",
    "Tanaka",
    "Rossi",
];
const PARTICLE: &[&str] = &["van", "de la", "von", "da", "bin"];
const SUFFIX: &[&str] = &["Jr.", "III", "Sr."];
const DOMAINS: &[&str] = &["Example.com", "acme.io", "MAIL.example.org", "widgets.co"];
const COMPANIES: &[&str] = &[
    "Acme Widgets",
    "Globex",
    "Initech LLC",
    "Umbrella Corp",
    "Soylent Green Co",
];
const STREETS: &[&str] = &["Main St", "Oak Avenue", "Market Street", "Elm Rd", "Sunset Blvd"];
const CITIES: &[&str] = &["San Francisco", " New York ", "Boston", "Chicago  ", "Seattle"];
const STATES: &[&str] = &["ca", "NY", "ma", "il", "Wa"];
const NOTES_TEXT: &[&str] = &[
    "",
    "Met at the 2023 expo",
    "Prefers email",
    "VIP customer; call before noon",
];
/// Area codes and exchanges that make valid US numbers.
const AREAS: &[&str] = &["415", "212", "617", "312", "206"];
const EXCHANGES: &[&str] = &["555", "867", "253", "496", "982"];

fn record(i: usize, rng: &mut Rng) -> Vec<String> {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let full_name = match rng.below(10) {
        0 => format!("{last}, {first}"),
        1 => format!("{first} {} {last}", rng.pick(MIDDLE)),
        2 => format!("{first} {} {last}", rng.pick(PARTICLE)),
        3 => format!("{first} {last} {}", rng.pick(SUFFIX)),
        4 => format!("  {first}   {last} "),
        _ => format!("{first} {last}"),
    };
    let email = format!(" {}.{}{}@{} ", first, last, i % 1000, rng.pick(DOMAINS));
    let street = format!("{} {}", 1 + rng.below(9999), rng.pick(STREETS));
    let zip = format!("{:05}", 10_000 + rng.below(89_999));
    // Midnight UTC, as HubSpot sends date properties.
    let created = (1_500_000_000_000_u64 + (rng.below(3000) as u64) * 86_400_000).to_string();
    let (area, exchange, line) = (rng.pick(AREAS), rng.pick(EXCHANGES), rng.below(10_000));
    let phone = match rng.below(4) {
        0 => format!("({area}) {exchange}-{line:04}"),
        1 => format!("{area}-{exchange}-{line:04}"),
        2 => format!("{area}.{exchange}.{line:04}"),
        _ => format!("+1 {area} {exchange} {line:04}"),
    };
    vec![
        full_name,
        email,
        rng.pick(COMPANIES).to_owned(),
        street,
        rng.pick(CITIES).to_owned(),
        rng.pick(STATES).to_owned(),
        zip,
        created,
        rng.pick(NOTES_TEXT).to_owned(),
        phone,
    ]
}

/// Transforms one record through every pair; returns how many target fields got a value.
fn transform_record(pairs: &[Pair], record: &[String], ctx: &Context) -> usize {
    let mut filled = 0;
    for pair in pairs {
        let mut inputs = [None; 3];
        for (slot, &source) in inputs.iter_mut().zip(&pair.sources) {
            *slot = Some(record[source].as_str());
        }
        let out = pair.pipeline.apply(&inputs[..pair.sources.len()], ctx);
        filled += usize::from(matches!(black_box(out), Ok(Some(_))));
    }
    filled
}

fn bench(label: &str, pairs: &[Pair], records: &[Vec<String>], ctx: &Context) {
    for record in records {
        for pair in pairs {
            let inputs: Vec<Option<&str>> = pair.sources.iter().map(|&s| Some(record[s].as_str())).collect();
            if let Err(e) = pair.pipeline.apply(&inputs, ctx) {
                panic!("{label}: {} on {inputs:?}: {e}", pair.pipeline);
            }
        }
    }
    let mut filled = 0;
    for record in records.iter().take(RECORDS / 10) {
        filled += transform_record(pairs, black_box(record), ctx);
    }
    let start = Instant::now();
    for _ in 0..PASSES {
        for record in records {
            filled += transform_record(pairs, black_box(record), ctx);
        }
    }
    let elapsed = start.elapsed();
    black_box(filled);
    let rate = (records.len() as f64 * f64::from(PASSES) / elapsed.as_secs_f64()) as u64;
    println!(
        "transform {label}: {rate} records/s ({} fields, {} records x {PASSES} passes)",
        pairs.len(),
        records.len()
    );
}

fn main() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let records: Vec<Vec<String>> = (0..RECORDS).map(|i| record(i, &mut rng)).collect();
    let ctx = Context {
        default_region: Some("US".to_owned()),
    };
    bench("without phone_e164", &mapping(false), &records, &ctx);
    bench("with phone_e164", &mapping(true), &records, &ctx);
}
