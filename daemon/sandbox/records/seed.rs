//! Deterministic seed data: N people per provider (HubSpot contacts, Pipedrive persons,
//! Salesforce Contacts, Jobber clients), N/5 companies (companies, organizations, Accounts;
//! Jobber properties) and N/5 deals (deals, Opportunities, Jobber jobs). Everything derives
//! from the record's index: no randomness, the same data on every run. Record `i` is
//! stamped `2025-01-01T00:00:00Z` plus `i` seconds.

use serde_json::{Map, Value, json};

use super::{ProviderRecords, RecordsState, hubspot, ts};
use crate::providers::Provider;

/// `2025-01-01T00:00:00Z` in epoch milliseconds.
pub const BASE_MS: i64 = 1_735_689_600_000;

const FIRST_NAMES: &[&str] = &[
    "Ada", "José", "Zoë", "Øyvind", "Mia", "Liam", "Noah", "Emma", "Olivia", "Lucas", "Amélie", "Sven", "Priya",
    "Chen", "Fatima", "Mateo", "Hannah", "Kwame", "Ingrid", "Dmitri",
];

const LAST_NAMES: &[&str] = &[
    "García",
    "Smith",
    "Müller",
    "O'Brien",
    "Nguyen",
    "Kowalski",
    "Johansson",
    "Okafor",
    "Rossi",
    "Tanaka",
    "Dubois",
    "Andersen",
    "Patel",
    "Cohen",
    "Lindqvist",
];

/// City, state, first three zip digits.
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "941"),
    ("Los Angeles", "CA", "900"),
    ("San Diego", "CA", "921"),
    ("Sacramento", "CA", "958"),
    ("New York", "NY", "100"),
    ("Brooklyn", "NY", "112"),
    ("Buffalo", "NY", "142"),
    ("Albany", "NY", "122"),
];

const AREA_CODES: &[u16] = &[415, 212, 617, 312, 206];

const JOB_TITLES: &[&str] = &[
    "Owner",
    "Office Manager",
    "Facilities Director",
    "Property Manager",
    "Operations Lead",
];

const COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Nordlys",
    "Café Olé",
    "Zürich Works",
];

const COMPANY_TRADES: &[&str] = &["Plumbing", "Electric", "Landscaping", "Roofing", "HVAC"];

const DEAL_KINDS: &[&str] = &[
    "Annual maintenance",
    "Kitchen remodel",
    "Roof repair",
    "HVAC install",
    "Landscaping plan",
];

const SF_STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Closed Won",
];
const SF_INDUSTRIES: &[&str] = &["Construction", "Technology", "Retail", "Healthcare", "Utilities"];

/// A seeded person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// First name.
    pub first: &'static str,
    /// Last name.
    pub last: &'static str,
    /// `first.last.<i>@example.com`, lowercase ASCII.
    pub email: String,
    /// Area code.
    pub area: u16,
    /// Exchange (200–299, never 211).
    pub exchange: u16,
    /// Line number.
    pub line: u16,
    /// `<n> Main St`.
    pub street: String,
    /// City.
    pub city: &'static str,
    /// `CA` or `NY`.
    pub state: &'static str,
    /// Five-digit zip.
    pub zip: String,
    /// Job title.
    pub title: &'static str,
}

impl Person {
    /// `(415) 234-5678`.
    pub fn phone_us(&self) -> String {
        format!("({}) {}-{:04}", self.area, self.exchange, self.line)
    }

    /// `+1 415 234 5678`.
    pub fn phone_intl(&self) -> String {
        format!("+1 {} {} {:04}", self.area, self.exchange, self.line)
    }

    /// `415-234-5678`.
    pub fn phone_dashed(&self) -> String {
        format!("{}-{}-{:04}", self.area, self.exchange, self.line)
    }

    /// `Ada García`.
    pub fn name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }

    /// `100 Main St, San Francisco, CA 94100`.
    pub fn postal_address(&self) -> String {
        format!("{}, {}, {} {}", self.street, self.city, self.state, self.zip)
    }
}

/// Lowercase ASCII letters and digits of `text`, accents folded (`Zoë` → `zoe`).
pub fn ascii_slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => "o",
            'ú' | 'ù' | 'û' | 'ü' => "u",
            'ñ' => "n",
            'ç' => "c",
            'ß' => "ss",
            'æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => continue,
        };
        out.push_str(folded);
    }
    out
}

/// Person number `i`.
pub fn person(i: usize) -> Person {
    let first = FIRST_NAMES[i % FIRST_NAMES.len()];
    let last = LAST_NAMES[(i + i / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let (city, state, zip3) = CITIES[i % CITIES.len()];
    // Exchanges 200–299 (never N11), lines from the index: valid US numbers, none fictional.
    let mut exchange = 200 + ((i / AREA_CODES.len()) % 100) as u16;
    if exchange == 211 {
        exchange = 221;
    }
    Person {
        first,
        last,
        email: format!("{}.{}.{i}@example.com", ascii_slug(first), ascii_slug(last)),
        area: AREA_CODES[i % AREA_CODES.len()],
        exchange,
        line: ((i * 37 + 1_234) % 10_000) as u16,
        street: format!("{} Main St", 100 + i),
        city,
        state,
        zip: format!("{zip3}{:02}", i % 100),
        title: JOB_TITLES[i % JOB_TITLES.len()],
    }
}

/// Company number `i`'s name.
pub fn company_name(i: usize) -> String {
    let combos = COMPANY_WORDS.len() * COMPANY_TRADES.len();
    let base = format!(
        "{} {}",
        COMPANY_WORDS[i % COMPANY_WORDS.len()],
        COMPANY_TRADES[(i / COMPANY_WORDS.len()) % COMPANY_TRADES.len()]
    );
    if i < combos {
        base
    } else {
        format!("{base} {}", i / combos + 1)
    }
}

/// Company number `i`'s web domain.
pub fn company_domain(i: usize) -> String {
    let name = company_name(i);
    let words: Vec<String> = name.split(' ').map(ascii_slug).filter(|w| !w.is_empty()).collect();
    format!("{}.example.com", words.join("-"))
}

fn deal_title(i: usize) -> String {
    format!("{} #{}", DEAL_KINDS[i % DEAL_KINDS.len()], i + 1)
}

fn deal_amount(i: usize) -> u64 {
    500 + (i as u64 * 137) % 9_500
}

/// `YYYY-MM-DD`, `days` after 2025-02-01.
fn close_date(days: usize) -> String {
    let start = jiff::civil::date(2025, 2, 1);
    start
        .checked_add(jiff::Span::new().days(days as i64 % 3_000))
        .unwrap_or(start)
        .to_string()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Forgets `provider`'s records and seeds `people` people (and a fifth as many companies
/// and deals).
pub fn seed_provider(records: &mut ProviderRecords, provider: Provider, people: usize) {
    records.reset();
    let companies = people / 5;
    // Each provider's people overlap half of the previous provider's, so a first sync between
    // two of them both matches existing records and creates new ones.
    let offset = match provider {
        Provider::Hubspot => 0,
        Provider::Jobber => people / 2,
        Provider::Pipedrive => people,
        Provider::Salesforce => people * 3 / 2,
    };
    let put = |records: &mut ProviderRecords, name: &str, i: usize, fields: Value| {
        records.create(name, object(fields), Some(ts(BASE_MS + i as i64 * 1_000)));
    };
    match provider {
        Provider::Hubspot => {
            for i in 0..companies {
                let p = person(i * 5 + 3);
                let industry = hubspot::INDUSTRIES[i % hubspot::INDUSTRIES.len()].0;
                put(
                    records,
                    "companies",
                    i,
                    json!({
                        "name": company_name(i), "domain": company_domain(i), "phone": p.phone_us(),
                        "address": p.street, "city": p.city, "state": p.state, "zip": p.zip,
                        "country": "United States", "industry": industry,
                    }),
                );
            }
            for i in 0..people {
                let p = person(i + offset);
                let mut fields = json!({
                    "firstname": p.first, "lastname": p.last, "email": p.email, "phone": p.phone_us(),
                    "address": p.street, "city": p.city, "state": p.state, "zip": p.zip,
                    "country": "United States", "jobtitle": p.title,
                    "lifecyclestage": if i % 3 == 0 { "customer" } else { "lead" },
                });
                if companies > 0 {
                    fields["company"] = company_name(i % companies).into();
                }
                put(records, "contacts", i, fields);
            }
            for i in 0..companies {
                let stage = hubspot::DEAL_STAGES[i % hubspot::DEAL_STAGES.len()].0;
                put(
                    records,
                    "deals",
                    i,
                    json!({
                        "dealname": deal_title(i), "amount": deal_amount(i).to_string(), "dealstage": stage,
                        "pipeline": "default", "closedate": format!("{}T00:00:00.000Z", close_date(i)),
                    }),
                );
            }
        }
        Provider::Salesforce => {
            for i in 0..companies {
                let p = person(i * 5 + 3);
                put(
                    records,
                    "Account",
                    i,
                    json!({
                        "Name": company_name(i), "Phone": p.phone_us(), "Website": format!("https://{}", company_domain(i)),
                        "Industry": SF_INDUSTRIES[i % SF_INDUSTRIES.len()], "BillingStreet": p.street,
                        "BillingCity": p.city, "BillingState": p.state, "BillingPostalCode": p.zip,
                        "BillingCountry": "United States",
                    }),
                );
            }
            let account_id = |i: usize| super::make_id(Provider::Salesforce, "Account", i as u64 + 1);
            for i in 0..people {
                let p = person(i + offset);
                put(
                    records,
                    "Contact",
                    i,
                    json!({
                        "FirstName": p.first, "LastName": p.last, "Email": p.email, "Phone": p.phone_us(),
                        "Title": p.title, "MailingStreet": p.street, "MailingCity": p.city, "MailingState": p.state,
                        "MailingPostalCode": p.zip, "MailingCountry": "United States",
                        "AccountId": (companies > 0).then(|| account_id(i % companies.max(1))),
                    }),
                );
            }
            for i in 0..companies {
                put(
                    records,
                    "Opportunity",
                    i,
                    json!({
                        "Name": deal_title(i), "StageName": SF_STAGES[i % SF_STAGES.len()], "CloseDate": close_date(i),
                        "Amount": deal_amount(i) as f64, "AccountId": account_id(i),
                    }),
                );
            }
        }
        Provider::Pipedrive => {
            for i in 0..companies {
                let p = person(i * 5 + 3);
                put(
                    records,
                    "organizations",
                    i,
                    json!({
                        "name": company_name(i), "owner_id": 10_001, "address": { "value": p.postal_address() },
                        "visible_to": 3, "label_ids": [], "custom_fields": {},
                    }),
                );
            }
            for i in 0..people {
                let p = person(i + offset);
                put(
                    records,
                    "persons",
                    i,
                    json!({
                        "name": p.name(), "first_name": p.first, "last_name": p.last, "owner_id": 10_001,
                        "org_id": (companies > 0).then(|| (i % companies.max(1)) as u64 + 1),
                        "emails": [{ "value": p.email, "primary": true, "label": "work" }],
                        "phones": [{ "value": p.phone_intl(), "primary": true, "label": "work" }],
                        "visible_to": 3, "label_ids": [], "job_title": p.title,
                        "postal_address": { "value": p.postal_address() }, "custom_fields": {},
                    }),
                );
            }
            for i in 0..companies {
                put(
                    records,
                    "deals",
                    i,
                    json!({
                        "title": deal_title(i), "value": deal_amount(i), "currency": "USD", "status": "open",
                        "stage_id": 1 + i % 5, "person_id": i as u64 + 1, "org_id": i as u64 + 1,
                        "expected_close_date": close_date(i), "owner_id": 10_001, "pipeline_id": 1, "visible_to": 3,
                        "label_ids": [], "custom_fields": {},
                    }),
                );
            }
        }
        Provider::Jobber => {
            for i in 0..people {
                let p = person(i + offset);
                let email_id = records.sub_id("Email");
                let phone_id = records.sub_id("PhoneNumber");
                put(
                    records,
                    "clients",
                    i,
                    json!({
                        "firstName": p.first, "lastName": p.last,
                        "companyName": (companies > 0).then(|| company_name(i % companies.max(1))),
                        "title": null, "isCompany": false, "isLead": i % 7 == 3, "isArchived": false, "balance": 0.0,
                        "emails": [{ "id": email_id, "address": p.email, "description": "MAIN", "primary": true }],
                        "phones": [{ "id": phone_id, "number": p.phone_dashed(), "description": "MAIN", "primary": true, "smsAllowed": false }],
                        "billingAddress": {
                            "street1": p.street, "street2": "", "city": p.city, "province": p.state,
                            "postalCode": p.zip, "country": "United States",
                        },
                    }),
                );
            }
            let client_id = |i: usize| super::make_id(Provider::Jobber, "clients", i as u64 + 1);
            for i in 0..companies {
                let p = person(i);
                put(
                    records,
                    "properties",
                    i,
                    json!({
                        "street1": p.street, "street2": "", "city": p.city, "province": p.state,
                        "postalCode": p.zip, "country": "United States", "isBillingAddress": true,
                        "clientId": client_id(i),
                    }),
                );
            }
            for i in 0..companies {
                let start = ts(BASE_MS + 31 * 86_400_000 + i as i64 * 86_400_000 + 9 * 3_600_000);
                let end = ts(start.as_millisecond() + 2 * 3_600_000);
                put(
                    records,
                    "jobs",
                    i,
                    json!({
                        "jobNumber": i + 1, "title": deal_title(i), "instructions": null, "jobStatus": "active",
                        "jobType": "ONE_OFF", "total": deal_amount(i) as f64,
                        "startAt": super::iso_s(start), "endAt": super::iso_s(end), "completedAt": null,
                        "clientId": client_id(i),
                        "propertyId": super::make_id(Provider::Jobber, "properties", i as u64 + 1),
                    }),
                );
            }
        }
    }
}

/// Seeds every provider with `people` people (see [`seed_provider`]).
pub fn seed(state: &mut RecordsState, people: usize) {
    for provider in Provider::ALL {
        seed_provider(state.provider(provider), provider, people);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_deterministic_and_valid() {
        assert_eq!(person(7), person(7));
        assert_eq!(ascii_slug("Øyvind"), "oyvind");
        assert_eq!(ascii_slug("O'Brien"), "obrien");
        for i in 0..2_000 {
            let p = person(i);
            assert!(
                p.email.is_ascii() && p.email.ends_with(&format!(".{i}@example.com")),
                "{}",
                p.email
            );
            assert_eq!(p.email, p.email.to_lowercase());
            let parsed = phonenumber::parse(Some(phonenumber::country::Id::US), p.phone_us()).unwrap();
            assert!(
                phonenumber::is_valid(&parsed),
                "{} is not a valid US number",
                p.phone_us()
            );
            assert_eq!(p.zip.len(), 5);
        }
        assert!(
            (0..40).any(|i| !person(i).name().is_ascii()),
            "some names are not ASCII"
        );
    }

    #[test]
    fn seeding_fills_every_provider() {
        let mut state = RecordsState::default();
        seed(&mut state, 10);
        for provider in Provider::ALL {
            let records = state.provider(provider);
            let counts: Vec<usize> = records.objects.values().map(|s| s.len()).collect();
            let mut sorted = counts.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [2, 2, 10], "{provider:?}");
        }
        let contacts = state.provider(Provider::Salesforce).store_ref("Contact").unwrap();
        let first = contacts.in_id_order().next().unwrap();
        assert_eq!(first.created_at, ts(BASE_MS));
        assert_eq!(first.fields["AccountId"].as_str().unwrap().len(), 18);
        let last = contacts.in_id_order().last().unwrap();
        assert_eq!(last.updated_at, ts(BASE_MS + 9_000));
        // Writes after seeding stamp later than the seeds.
        let records = state.provider(Provider::Hubspot);
        assert!(records.tick() > ts(BASE_MS + 9_000));
    }
}
