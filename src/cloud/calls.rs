//! Every AWS call attempt is logged at debug level (`-v`) and counted, so users see what the
//! tool does and benchmarks can count calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Clone, Debug, Default)]
pub struct CallLog {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallLog {
    /// Attempts per `service:Operation`, retries included.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("not poisoned").clone()
    }

    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "infra-call-log"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let call = format!("{}:{}", m.service(), m.name());
            let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
            if attempt > 1 {
                tracing::debug!(target: "infra::aws", "retry {} of call {call} (throttled, 5xx or dropped)", attempt - 1);
            } else {
                tracing::debug!(target: "infra::aws", "call {call}");
            }
            *self
                .counts
                .lock()
                .expect("not poisoned")
                .entry(call)
                .or_default() += 1;
        }
        Ok(())
    }
}
