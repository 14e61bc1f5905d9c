//! A source whose configuration is missing or invalid: every call fails with the reason,
//! naming the variable, so a command that does not need the source still works.

use async_trait::async_trait;

use crate::integrations::{
    bitrix::{Cms, CmsError},
    infoclinica::{Mis, MisError},
    sms::{Accepted, OutgoingSms, SmsError, SmsGateway},
};

/// A source that is not configured; the string says why.
pub struct Unconfigured(pub String);

#[async_trait]
impl Mis for Unconfigured {
    async fn branches(&self) -> Result<Vec<crate::integrations::infoclinica::MisBranch>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn departments(
        &self,
    ) -> Result<Vec<crate::integrations::infoclinica::MisDepartment>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn doctors_page(
        &self,
        _: u32,
        _: u32,
    ) -> Result<crate::integrations::infoclinica::MisDoctorPage, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn prices(
        &self,
        _: i64,
    ) -> Result<Vec<crate::integrations::infoclinica::MisPrice>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
}

#[async_trait]
impl crate::integrations::infoclinica::MisBooking for Unconfigured {
    async fn schedule(
        &self,
        _: i64,
        _: i64,
        _: chrono::NaiveDate,
        _: chrono::NaiveDate,
    ) -> Result<Vec<crate::integrations::infoclinica::MisDaySchedule>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn reserve(
        &self,
        _: &crate::integrations::infoclinica::ReserveRequest,
    ) -> Result<i64, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn cancel(&self, _: i64, _: i64, _: Option<i64>) -> Result<(), MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn find_patient(
        &self,
        _: &crate::integrations::infoclinica::PatientQuery,
    ) -> Result<Option<i64>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn add_patient(
        &self,
        _: &crate::integrations::infoclinica::NewMisPatient,
    ) -> Result<i64, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn appointments(
        &self,
        _: i64,
        _: chrono::NaiveDate,
    ) -> Result<Vec<crate::integrations::infoclinica::MisAppointment>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn changes(
        &self,
        _: i64,
    ) -> Result<Vec<crate::integrations::infoclinica::MisChange>, MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
    async fn accept_changes(&self, _: i64, _: &[i64]) -> Result<(), MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }

    async fn set_visit_mark(&self, _: i64, _: i64, _: bool) -> Result<(), MisError> {
        Err(MisError::NotConfigured(self.0.clone()))
    }
}

#[async_trait]
impl Cms for Unconfigured {
    async fn page(
        &self,
        _: crate::integrations::bitrix::ContentKind,
        _: Option<chrono::DateTime<chrono::FixedOffset>>,
        _: Option<&str>,
        _: u32,
    ) -> Result<crate::integrations::bitrix::ContentPage, CmsError> {
        Err(CmsError::NotConfigured(self.0.clone()))
    }
    async fn ids(&self, _: crate::integrations::bitrix::ContentKind) -> Result<Vec<i64>, CmsError> {
        Err(CmsError::NotConfigured(self.0.clone()))
    }
    fn absolute_url(&self, src: &str) -> String {
        src.to_owned()
    }
}

#[async_trait]
impl SmsGateway for Unconfigured {
    fn name(&self) -> &'static str {
        "unconfigured"
    }
    async fn send(&self, _: &OutgoingSms) -> Result<Accepted, SmsError> {
        Err(SmsError::NotConfigured(self.0.clone()))
    }
}
