//! `[load_balancer]`: certificate, TLS policy, target port, deregistration delay and health check,
//! and the time services get to drain from it.

use std::ops::Range;

use toml::Spanned;

use super::Validator;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    pub(super) fn load_balancer(
        &mut self,
        lb: &LoadBalancerFile,
        span: Range<usize>,
    ) -> Option<LoadBalancer> {
        let templated = lb.certificate_arn.as_ref().map(|c| (c, self.templated(c)));
        let certificate_arn = match templated {
            Some((_, None)) => None,
            Some((_, Some(arn))) if arn.starts_with("arn:") && arn.contains(":certificate/") => {
                Some(arn)
            }
            Some((c, Some(arn))) => {
                let msg = format!("certificate_arn {arn:?} is not an ACM certificate ARN");
                self.error(
                    c.span(),
                    msg,
                    Some("it looks like arn:aws:acm:REGION:ACCOUNT:certificate/ID"),
                );
                None
            }
            None => {
                let msg = "load_balancer.certificate_arn is missing: the HTTPS listener needs a certificate";
                let help =
                    "request or import one in ACM, then set certificate_arn = \"arn:aws:acm:…\"";
                self.error(
                    span.start..span.start + "[load_balancer]".len(),
                    msg,
                    Some(help),
                );
                None
            }
        };
        let tls_policy = match &lb.tls_policy {
            Some(p) if p.get_ref().starts_with("ELBSecurityPolicy-") => p.get_ref().clone(),
            Some(p) => {
                self.error(
                    p.span(),
                    format!(
                        "tls_policy {:?} is not an ELB security policy name",
                        p.get_ref()
                    ),
                    None,
                );
                String::new()
            }
            None => DEFAULT_TLS_POLICY.to_string(),
        };
        let target_port = self.int(&lb.target_port, "target_port", 1..=65535);
        let deregistration_delay = match &lb.deregistration_delay {
            Some(d) => self.int(d, "deregistration_delay", 0..=3600),
            None => Some(30),
        };
        let hc = lb.health_check.as_ref().map(|h| h.get_ref());
        let health_check = self.health_check(hc.unwrap_or(&HealthCheckFile::default()));
        Some(LoadBalancer {
            certificate_arn: certificate_arn?,
            tls_policy,
            target_port: target_port? as u16,
            deregistration_delay: deregistration_delay? as u32,
            health_check: health_check?,
        })
    }

    fn health_check(&mut self, h: &HealthCheckFile) -> Option<HealthCheck> {
        let path = h
            .path
            .as_ref()
            .map_or("/".to_string(), |p| p.get_ref().clone());
        if let Some(p) = &h.path
            && (!p.get_ref().starts_with('/') || p.get_ref().len() > 1024)
        {
            self.error(
                p.span(),
                format!(
                    "health check path {:?} must start with / and have at most 1024 characters",
                    p.get_ref()
                ),
                None,
            );
        }
        let matcher = h
            .matcher
            .as_ref()
            .map_or("200-399".to_string(), |m| m.get_ref().clone());
        if let Some(m) = &h.matcher
            && let Err(why) = http_matcher(m.get_ref())
        {
            let help = "one code (\"200\"), a list (\"200,204\") or one range (\"200-399\"), of codes from 200 to 499";
            self.error(
                m.span(),
                format!("health check matcher {:?} is not valid: {why}", m.get_ref()),
                Some(help),
            );
        }
        let mut num = |v: &Option<Spanned<i64>>, what: &str, range, default| match v {
            Some(v) => self.int(v, what, range),
            None => Some(default),
        };
        let interval = num(&h.interval, "health check interval", 5..=300, 15);
        let timeout = num(&h.timeout, "health check timeout", 2..=120, 5);
        let healthy = num(&h.healthy_threshold, "healthy_threshold", 2..=10, 3);
        let unhealthy = num(&h.unhealthy_threshold, "unhealthy_threshold", 2..=10, 2);
        // AWS refuses a timeout that is not shorter than the interval, defaults included
        // (CreateTargetGroup, HealthCheckTimeoutSeconds).
        let set = h.timeout.as_ref().or(h.interval.as_ref()).map(|v| v.span());
        if let (Some(i), Some(t), Some(span)) = (interval, timeout, set)
            && t >= i
        {
            let shown = |v: &Option<Spanned<i64>>, n| match v {
                Some(_) => format!("{n}s"),
                None => format!("{n}s (the default)"),
            };
            self.error(
                span,
                format!(
                    "health check timeout {} must be shorter than the interval {}",
                    shown(&h.timeout, t),
                    shown(&h.interval, i)
                ),
                Some("AWS refuses it when the target group is created: set timeout below interval"),
            );
        }
        Some(HealthCheck {
            path,
            matcher,
            interval: interval? as u32,
            timeout: timeout? as u32,
            healthy_threshold: healthy? as u32,
            unhealthy_threshold: unhealthy? as u32,
        })
    }

    /// A task published on its node's own port (host mode) goes when its node is taken out or
    /// its service updated; the load balancer keeps sending it requests until the deregistration
    /// delay is over or its health check notices (interval × unhealthy threshold). A task that
    /// stops sooner than that fails requests ("Deregistration delay", docs.aws.amazon.com/
    /// elasticloadbalancing/latest/application/load-balancer-target-groups.html). Docker gives a
    /// task `stop_grace_period` (10 s by default) before it kills it.
    pub(super) fn drain_time(&mut self, f: &StackFile, lb: &LoadBalancer) {
        let hc = &lb.health_check;
        let notice = u64::from(hc.interval) * u64::from(hc.unhealthy_threshold);
        let needed = u64::from(lb.deregistration_delay) + notice;
        for (name, s) in &f.services {
            let svc = s.get_ref();
            let host = svc.publish.as_ref().is_some_and(|p| p.get_ref() == "host");
            let port = svc.port.as_ref().map(|p| *p.get_ref());
            if !host || port != Some(i64::from(lb.target_port)) {
                continue;
            }
            let (grace, at) = match &svc.stop_grace_period {
                Some(g) => match humantime::parse_duration(g.get_ref()) {
                    Ok(d) => (d.as_secs(), g.span()),
                    Err(_) => continue,
                },
                None => (10, s.span()),
            };
            if grace >= needed {
                continue;
            }
            self.warn(
                at,
                format!(
                    "service {name:?} gets {grace}s to stop, but the load balancer may send it requests for {needed}s: \
                     [load_balancer] deregistration_delay ({}s) + health_check interval × unhealthy_threshold ({}s × {})",
                    lb.deregistration_delay, hc.interval, hc.unhealthy_threshold
                ),
                "raise [services] stop_grace_period (and let the app keep serving that long after SIGTERM, failing its health check), or lower deregistration_delay and the health check's interval",
            );
        }
    }
}

/// An ALB health check matcher: one code, a comma list of codes, or one range, of HTTP codes
/// 200 to 499 (`Matcher.HttpCode`, CreateTargetGroup).
fn http_matcher(m: &str) -> Result<(), String> {
    let code = |c: &str| match c.trim().parse::<u16>() {
        Ok(n) if (200..=499).contains(&n) => Ok(n),
        _ => Err(format!("{c:?} is not an HTTP code from 200 to 499")),
    };
    match m.split_once('-') {
        Some((low, high)) if !m.contains(',') => {
            let (low, high) = (code(low)?, code(high)?);
            if low > high {
                return Err(format!("the range runs backwards ({low} > {high})"));
            }
            Ok(())
        }
        Some(_) => Err("a list cannot hold a range".into()),
        None => m.split(',').try_for_each(|c| code(c).map(drop)),
    }
}
