//! SMTP email (lettre, rustls on ring): escalations to the configured
//! recipients, and to a new critical finding's owner when the integration
//! is named as `owner_via`. STARTTLS by default; plaintext only when the
//! file says `tls = "none"` (a relay on loopback).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};

use super::config::{Email, SmtpTls};
use super::http::DeliveryError;
use super::templates::Message;

pub struct EmailClient {
    cfg: Email,
    timeout: std::time::Duration,
}

impl EmailClient {
    pub fn new(cfg: Email, timeout: std::time::Duration) -> EmailClient {
        EmailClient { cfg, timeout }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        let smtp = |e: lettre::transport::smtp::Error| DeliveryError::Smtp(e.to_string());
        let host = self.cfg.host.as_str();
        let builder = match self.cfg.tls {
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(smtp)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(smtp)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder.port(self.cfg.port).timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.cfg.user, &self.cfg.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.value().map_err(DeliveryError::Config)?));
        }
        Ok(builder.build())
    }

    /// Sends `m` to the configured recipients, or to `to` alone when given.
    pub async fn send(&self, m: &Message, to: Option<&str>) -> Result<(), DeliveryError> {
        let bad = |e: String| DeliveryError::Config(format!("email: {e}"));
        let mut mail = Mail::builder().from(self.cfg.from.parse().map_err(|e| bad(format!("from: {e}")))?);
        let recipients: Vec<&str> = match to {
            Some(t) => vec![t],
            None => self.cfg.to.iter().map(String::as_str).collect(),
        };
        if recipients.is_empty() {
            return Err(bad("no recipient (to = [...])".into()));
        }
        for r in recipients {
            mail = mail.to(r.parse().map_err(|e| bad(format!("`{r}`: {e}")))?);
        }
        let mail = mail
            .subject(m.title.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| bad(e.to_string()))?;
        self.transport()?.send(mail).await.map_err(|e| DeliveryError::Smtp(e.to_string()))?;
        Ok(())
    }
}
