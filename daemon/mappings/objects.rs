//! The objects each provider offers to mappings, and which of them are people.

use crate::providers::Provider;

/// Object types a mapping may use, per provider.
pub fn supported_objects(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Hubspot => &["contacts", "companies", "deals"],
        Provider::Pipedrive => &["persons", "organizations", "deals"],
        Provider::Salesforce => &["Contact", "Account", "Opportunity"],
        Provider::Jobber => &["clients", "jobs", "properties"],
    }
}

/// The object's email field, for people objects (the default match key).
pub fn email_field(provider: Provider, object: &str) -> Option<&'static str> {
    match (provider, object) {
        (Provider::Hubspot, "contacts") => Some("email"),
        (Provider::Pipedrive, "persons") => Some("email"),
        (Provider::Salesforce, "Contact") => Some("Email"),
        (Provider::Jobber, "clients") => Some("email"),
        _ => None,
    }
}

/// The object's name-like field, the default match key for other objects.
pub fn name_field(provider: Provider, object: &str) -> Option<&'static str> {
    match (provider, object) {
        (Provider::Hubspot, "companies") => Some("name"),
        (Provider::Hubspot, "deals") => Some("dealname"),
        (Provider::Pipedrive, "organizations") => Some("name"),
        (Provider::Pipedrive, "deals") => Some("title"),
        (Provider::Salesforce, "Account" | "Opportunity") => Some("Name"),
        (Provider::Jobber, "jobs") => Some("title"),
        (Provider::Jobber, "properties") => Some("street1"),
        _ => None,
    }
}
