//! [`InfoclinicaClient`]: the [`Mis`] and [`MisBooking`] traits over HTTP(S).
//!
//! One generic layer, [`InfoclinicaClient::call`], sends any operation and returns its
//! checked `<OP>_OUT` block; the trait methods only pick the message from
//! [`super::messages`]. Transport: POST of the XML, optional mutual TLS and extra roots,
//! `X-Forwarded-Host` for the cloud gateway, no redirects, a capped body, and retries with
//! backoff for read-only messages only.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Certificate, Client, Identity, StatusCode, header};

use super::{
    Mis, MisAppointment, MisBooking, MisBranch, MisChange, MisDaySchedule, MisDepartment,
    MisDoctorPage, MisError, MisPrice, NewMisPatient, PatientQuery, ReserveRequest,
    messages::{self, Idempotency},
    paging::Pager,
    xml::{self, Element, Header, XmlWriter},
};
use crate::{
    config::Config,
    integrations::http::{self, ReadError, TransportFailure},
};

/// Pauses between attempts of a read-only message: three attempts in all.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(600)];

/// The MIS client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct InfoclinicaClient {
    http: Client,
    url: String,
    host: Option<String>,
    timeout: Duration,
    backoff: Vec<Duration>,
}

impl InfoclinicaClient {
    /// From `INFOCLINICA_*`: [`MisError::NotConfigured`] when the URL is unset, when only one
    /// of certificate and key is given, or when a PEM file is unreadable or invalid.
    pub fn from_config(config: &Config) -> Result<Self, MisError> {
        let url = config
            .infoclinica_url
            .clone()
            .ok_or_else(|| MisError::NotConfigured("INFOCLINICA_URL is not set".into()))?;
        let identity = match (
            &config.infoclinica_client_cert,
            &config.infoclinica_client_key,
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mut pem = read_pem("INFOCLINICA_CLIENT_CERT", cert)?;
                pem.push(b'\n');
                pem.extend(read_pem("INFOCLINICA_CLIENT_KEY", key)?);
                Some(Identity::from_pem(&pem).map_err(|e| {
                    MisError::NotConfigured(format!(
                        "INFOCLINICA_CLIENT_CERT/INFOCLINICA_CLIENT_KEY: not a PEM certificate and key: {e}"
                    ))
                })?)
            }
            _ => {
                return Err(MisError::NotConfigured(
                    "INFOCLINICA_CLIENT_CERT and INFOCLINICA_CLIENT_KEY must be set together"
                        .into(),
                ));
            }
        };
        let roots = match &config.infoclinica_ca {
            None => Vec::new(),
            Some(path) => {
                let pem = read_pem("INFOCLINICA_CA", path)?;
                let roots = Certificate::from_pem_bundle(&pem).map_err(|e| {
                    MisError::NotConfigured(format!("INFOCLINICA_CA: not PEM certificates: {e}"))
                })?;
                if roots.is_empty() {
                    return Err(MisError::NotConfigured(
                        "INFOCLINICA_CA: no certificate in the file".into(),
                    ));
                }
                roots
            }
        };
        Self::build(
            url,
            config.infoclinica_host.clone(),
            config.infoclinica_timeout,
            identity,
            roots,
        )
    }

    /// A client without client certificate or extra roots (tests, the emulator).
    pub fn new(
        url: impl Into<String>,
        host: Option<String>,
        timeout: Duration,
    ) -> Result<Self, MisError> {
        Self::build(url.into(), host, timeout, None, Vec::new())
    }

    fn build(
        url: String,
        host: Option<String>,
        timeout: Duration,
        identity: Option<Identity>,
        roots: Vec<Certificate>,
    ) -> Result<Self, MisError> {
        let mut builder = http::client_builder(timeout);
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| MisError::NotConfigured(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            host,
            timeout,
            backoff: BACKOFF.to_vec(),
        })
    }

    /// Replaces the pauses between attempts (their count + 1 is the number of attempts).
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sends `op` (addressed to `filial` through `MSH.99` when given) with the `<op>_IN`
    /// content from `write_in`, and returns the checked `<op>_OUT` block. A
    /// [`Idempotency::ReadOnly`] message is tried again after a transient failure.
    pub async fn call(
        &self,
        op: &str,
        filial: Option<i64>,
        idempotency: Idempotency,
        write_in: impl FnOnce(&mut XmlWriter),
    ) -> Result<Element, MisError> {
        self.call_with(op, filial, idempotency, write_in, true)
            .await
    }

    /// As [`Self::call`], but returns the `<op>_OUT` block whatever its `SPRESULT`: for
    /// answers whose failures carry data (the existing card of a `CLIENT_ADD` duplicate).
    pub async fn call_unchecked(
        &self,
        op: &str,
        filial: Option<i64>,
        idempotency: Idempotency,
        write_in: impl FnOnce(&mut XmlWriter),
    ) -> Result<Element, MisError> {
        self.call_with(op, filial, idempotency, write_in, false)
            .await
    }

    async fn call_with(
        &self,
        op: &str,
        filial: Option<i64>,
        idempotency: Idempotency,
        write_in: impl FnOnce(&mut XmlWriter),
        check_spresult: bool,
    ) -> Result<Element, MisError> {
        let body = xml::request(op, &Header::now(filial), write_in);
        let mut pauses = self.backoff.iter();
        loop {
            let started = std::time::Instant::now();
            let result = self.attempt(op, body.clone(), check_spresult).await;
            // A business refusal (SPRESULT 0) is an answer, not a failure of the MIS.
            let outcome = match &result {
                Ok(_) | Err(MisError::Failed { .. }) => "ok",
                Err(_) => "error",
            };
            metrics::counter!("mis_requests_total", "op" => op.to_owned(), "outcome" => outcome)
                .increment(1);
            metrics::histogram!("mis_request_duration_seconds", "op" => op.to_owned())
                .record(started.elapsed().as_secs_f64());
            match result {
                Err(e) if idempotency == Idempotency::ReadOnly && e.is_transient() => {
                    let Some(pause) = pauses.next() else {
                        return Err(e);
                    };
                    tracing::warn!(op, error = %e, elapsed_ms = started.elapsed().as_millis() as u64, "MIS call failed; retrying");
                    tokio::time::sleep(*pause).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        op: &str,
        body: String,
        check_spresult: bool,
    ) -> Result<Element, MisError> {
        let mut request = self
            .http
            .post(&self.url)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body);
        if let Some(host) = &self.host {
            request = request.header("X-Forwarded-Host", host);
        }
        // reqwest's own timeout covers the body too; this one also bounds a stalled read.
        let exchange = async {
            let mut response = request.send().await.map_err(|e| self.transport(&e))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(MisError::Redirect {
                    location: http::location(&response),
                });
            }
            if status != StatusCode::OK {
                return Err(MisError::Http {
                    status: status.as_u16(),
                    body: http::excerpt(response).await,
                });
            }
            http::read_capped(&mut response, http::BODY_LIMIT)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge => MisError::TooLarge {
                        limit: http::BODY_LIMIT,
                    },
                    ReadError::Transport(e) => self.transport(&e),
                })
        };
        let bytes = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| MisError::Timeout(self.timeout))??;
        if check_spresult {
            xml::parse_response(op, &bytes)
        } else {
            xml::parse_answer(op, &bytes)
        }
    }

    fn transport(&self, error: &reqwest::Error) -> MisError {
        match http::classify(error) {
            TransportFailure::Timeout => MisError::Timeout(self.timeout),
            TransportFailure::Unreachable(text) => MisError::Unreachable(text),
        }
    }
}

fn read_pem(variable: &str, path: &std::path::Path) -> Result<Vec<u8>, MisError> {
    std::fs::read(path).map_err(|e| {
        MisError::NotConfigured(format!("{variable}: cannot read {}: {e}", path.display()))
    })
}

#[async_trait]
impl Mis for InfoclinicaClient {
    async fn branches(&self) -> Result<Vec<MisBranch>, MisError> {
        use messages::filial_list as m;
        let out = self.call(m::OP, None, m::IDEMPOTENCY, m::write_in).await?;
        m::map(&out)
    }

    async fn departments(&self) -> Result<Vec<MisDepartment>, MisError> {
        use messages::department_list as m;
        let out = self.call(m::OP, None, m::IDEMPOTENCY, m::write_in).await?;
        m::map(&out)
    }

    async fn doctors_page(&self, first_row: u32, last_row: u32) -> Result<MisDoctorPage, MisError> {
        use messages::doctor_list as m;
        let out = self
            .call(m::OP, None, m::IDEMPOTENCY, |w| {
                m::write_in(w, first_row, last_row);
            })
            .await?;
        m::map(&out)
    }

    async fn prices(&self, department_mis_id: i64) -> Result<Vec<MisPrice>, MisError> {
        use messages::price_list as m;
        let out = self
            .call(m::OP, None, m::IDEMPOTENCY, |w| {
                m::write_in(w, department_mis_id);
            })
            .await?;
        m::map(&out, department_mis_id)
    }
}

#[async_trait]
impl MisBooking for InfoclinicaClient {
    async fn schedule(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<MisDaySchedule>, MisError> {
        use messages::schedule as m;
        let out = self
            .call(m::OP, Some(branch_mis_id), m::IDEMPOTENCY, |w| {
                m::write_in(w, doctor_mis_id, from, to);
            })
            .await?;
        // A server that ignores the doctor filter answers for every doctor of the filial.
        Ok(m::map(&out)?
            .into_iter()
            .filter(|d| d.doctor_mis_id == doctor_mis_id && (from..=to).contains(&d.date))
            .collect())
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<i64, MisError> {
        use messages::schedule_rec_reserve as m;
        let out = self
            .call(m::OP, Some(request.branch_mis_id), m::IDEMPOTENCY, |w| {
                m::write_in(w, request);
            })
            .await?;
        m::map(&out)
    }

    async fn cancel(
        &self,
        branch_mis_id: i64,
        schedid: i64,
        pcode: Option<i64>,
    ) -> Result<(), MisError> {
        use messages::schedule_rec_remove as m;
        self.call(m::OP, Some(branch_mis_id), m::IDEMPOTENCY, |w| {
            m::write_in(w, schedid, pcode);
        })
        .await
        .map(|_| ())
    }

    async fn set_visit_mark(
        &self,
        branch_mis_id: i64,
        schedid: i64,
        visited: bool,
    ) -> Result<(), MisError> {
        use messages::schedule_rec_update as m;
        self.call(m::OP, Some(branch_mis_id), m::IDEMPOTENCY, |w| {
            m::write_in(w, schedid, visited);
        })
        .await
        .map(|_| ())
    }

    async fn find_patient(&self, query: &PatientQuery) -> Result<Option<i64>, MisError> {
        use messages::client_check as m;
        match self
            .call(m::OP, None, m::IDEMPOTENCY, |w| m::write_in(w, query))
            .await
        {
            Ok(out) => m::map(&out),
            Err(e) if m::is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn add_patient(&self, patient: &NewMisPatient) -> Result<i64, MisError> {
        use messages::client_add as m;
        let out = self
            .call_unchecked(m::OP, None, m::IDEMPOTENCY, |w| m::write_in(w, patient))
            .await?;
        m::map(&out)
    }

    async fn appointments(
        &self,
        pcode: i64,
        from: chrono::NaiveDate,
    ) -> Result<Vec<MisAppointment>, MisError> {
        use messages::schedule_rec_list as m;
        /// A bound on pages, against a server whose list never ends.
        const MAX_PAGES: u32 = 100;
        let mut pager = Pager::new(m::OP, m::PAGE_SIZE, MAX_PAGES);
        let mut all = Vec::new();
        while let Some((first_row, last_row)) = pager.next_window() {
            let out = self
                .call(m::OP, None, m::IDEMPOTENCY, |w| {
                    m::write_in(w, pcode, from, first_row, last_row);
                })
                .await?;
            let (items, total) = m::map(&out)?;
            pager.accept(items.len(), total)?;
            all.extend(items);
        }
        Ok(all)
    }

    async fn changes(&self, branch_mis_id: i64) -> Result<Vec<MisChange>, MisError> {
        use messages::schedule_change_list as m;
        let out = self
            .call(m::OP, Some(branch_mis_id), m::IDEMPOTENCY, m::write_in)
            .await?;
        m::map(&out)
    }

    async fn accept_changes(&self, branch_mis_id: i64, change_ids: &[i64]) -> Result<(), MisError> {
        use messages::schedule_change_accept as m;
        if change_ids.is_empty() {
            return Ok(());
        }
        self.call(m::OP, Some(branch_mis_id), m::IDEMPOTENCY, |w| {
            m::write_in(w, change_ids);
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("config")
    }

    #[test]
    fn from_config_names_what_is_missing() {
        let err = InfoclinicaClient::from_config(&config_with(&[])).expect_err("no URL");
        assert!(matches!(&err, MisError::NotConfigured(m) if m.contains("INFOCLINICA_URL")));

        let err = InfoclinicaClient::from_config(&config_with(&[
            ("INFOCLINICA_URL", "https://mis.example/api/xml"),
            ("INFOCLINICA_CLIENT_CERT", "/nonexistent/cert.pem"),
            ("INFOCLINICA_CLIENT_KEY", "/nonexistent/key.pem"),
        ]))
        .expect_err("unreadable certificate");
        assert!(
            matches!(&err, MisError::NotConfigured(m) if m.contains("INFOCLINICA_CLIENT_CERT")),
            "{err}"
        );

        let err = InfoclinicaClient::from_config(&config_with(&[
            ("INFOCLINICA_URL", "https://mis.example/api/xml"),
            ("INFOCLINICA_CLIENT_CERT", "/nonexistent/cert.pem"),
        ]))
        .expect_err("key missing");
        assert!(matches!(&err, MisError::NotConfigured(m) if m.contains("together")));

        InfoclinicaClient::from_config(&config_with(&[(
            "INFOCLINICA_URL",
            "https://mis.example/api/xml",
        )]))
        .expect("URL alone is enough");
    }
}
