//! The four providers: their identities, OAuth endpoints and configuration. Each provider's
//! real API lives in its own module; base URLs default to the real services and can point at
//! the sandbox.

pub mod config;
pub mod identity;
pub mod jwt;
pub mod oauth;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A SaaS provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Hubspot,
    Jobber,
    Pipedrive,
    Salesforce,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Hubspot,
        Provider::Jobber,
        Provider::Pipedrive,
        Provider::Salesforce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Hubspot => "hubspot",
            Provider::Jobber => "jobber",
            Provider::Pipedrive => "pipedrive",
            Provider::Salesforce => "salesforce",
        }
    }

    /// Human name for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Hubspot => "HubSpot",
            Provider::Jobber => "Jobber",
            Provider::Pipedrive => "Pipedrive",
            Provider::Salesforce => "Salesforce",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}
