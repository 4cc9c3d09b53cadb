//! Sends queued webhook deliveries and retries failed ones on each provider's schedule:
//! HubSpot up to 10 retries spread over about a day, Pipedrive 3 more attempts after 3, 30
//! and 150 s, Salesforce doubling from 30 s up to 2 h between attempts for 24 h. Jobber
//! documents at-least-once delivery without a schedule; the simulator retries after 1, 10
//! and 60 s.

use std::time::Duration;

use super::payloads;
use crate::providers::Provider;
use crate::sandbox::Sandbox;

/// Deliveries sent at once.
const CONCURRENCY: usize = 32;

/// The wait before the next attempt after `failures` failed ones, `age_ms` after the first;
/// `None` when the provider gives up.
pub fn retry_delay_ms(provider: Provider, failures: u32, age_ms: i64) -> Option<i64> {
    match provider {
        Provider::Hubspot => (failures <= 10).then(|| 180_000 * 2_i64.pow(failures.saturating_sub(1).min(7))),
        Provider::Pipedrive => [3_000, 30_000, 150_000].get(failures as usize - 1).copied(),
        Provider::Jobber => [1_000, 10_000, 60_000].get(failures as usize - 1).copied(),
        Provider::Salesforce => {
            (age_ms < 24 * 3_600_000).then(|| (30_000 * 2_i64.pow(failures.saturating_sub(1).min(8))).min(7_200_000))
        }
    }
}

/// How long the provider waits for an answer.
fn timeout(provider: Provider) -> Duration {
    Duration::from_secs(match provider {
        Provider::Hubspot => 5,
        Provider::Jobber => 1,
        Provider::Pipedrive => 10,
        Provider::Salesforce => 60,
    })
}

/// Sends `sandbox`'s webhook deliveries as they become due; runs until the process ends.
pub async fn run(sandbox: Sandbox) {
    let Ok(http) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        return;
    };
    loop {
        let now = crate::sandbox::records::now_ms();
        let (due, next) = sandbox.with_state(|state| state.webhooks.take_due(now, CONCURRENCY));
        if due.is_empty() {
            let wait = next.map_or(Duration::from_secs(3600), |at| {
                Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
            });
            tokio::select! {
                () = sandbox.webhook_wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let sends = due.into_iter().map(|delivery| {
            let http = http.clone();
            async move {
                let (headers, body) = payloads::request(
                    &delivery.payload,
                    &delivery.url,
                    delivery.attempts,
                    crate::sandbox::records::now_ms(),
                );
                let mut request = http.post(&delivery.url).timeout(timeout(delivery.provider)).body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        let acknowledged = status.is_success()
                            && (delivery.provider != Provider::Salesforce || text.contains("<Ack>true</Ack>"));
                        let error = (!acknowledged)
                            .then(|| format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()));
                        (Some(status.as_u16()), error)
                    }
                    Err(error) => (None, Some(error.without_url().to_string())),
                };
                (delivery, outcome)
            }
        });
        let settled = futures::future::join_all(sends).await;
        let now = crate::sandbox::records::now_ms();
        sandbox.with_state(|state| {
            for (delivery, (status, error)) in settled {
                state.webhooks.settle(delivery, status, error, now);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_provider_retries_on_its_schedule() {
        assert_eq!(retry_delay_ms(Provider::Pipedrive, 1, 0), Some(3_000));
        assert_eq!(retry_delay_ms(Provider::Pipedrive, 3, 0), Some(150_000));
        assert_eq!(retry_delay_ms(Provider::Pipedrive, 4, 0), None);
        assert_eq!(retry_delay_ms(Provider::Hubspot, 1, 0), Some(180_000));
        assert!(retry_delay_ms(Provider::Hubspot, 10, 0).is_some());
        assert_eq!(retry_delay_ms(Provider::Hubspot, 11, 0), None);
        assert_eq!(retry_delay_ms(Provider::Salesforce, 1, 0), Some(30_000));
        assert_eq!(retry_delay_ms(Provider::Salesforce, 20, 0), Some(7_200_000));
        assert_eq!(retry_delay_ms(Provider::Salesforce, 2, 25 * 3_600_000), None);
        assert_eq!(retry_delay_ms(Provider::Jobber, 4, 0), None);
    }
}
