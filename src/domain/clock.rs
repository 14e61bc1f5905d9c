//! `Clock`: where the core reads "now". The server runs on the system clock; tests fix it
//! to decide what is past and future without waiting.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<RwLock<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `at` until [`Clock::set`] moves it.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self {
            fixed: Some(Arc::new(RwLock::new(at))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.fixed {
            None => Utc::now(),
            Some(at) => *at.read().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Moves a fixed clock; the system clock ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(fixed) = &self.fixed {
            *fixed
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.fixed {
            None => f.write_str("Clock::system"),
            Some(_) => write!(f, "Clock::fixed({})", self.now()),
        }
    }
}
