//! The enrollment service: join tokens in, agent certificates out.
//!
//! The only service a caller without a certificate may use; the token is
//! its credential (see [`super::trust`]).

use tonic::{Request, Response, Status};
use vantage_proto::v1;
use vantage_proto::v1::enrollment_server::Enrollment;

use super::trust::Trust;

pub struct EnrollmentService {
    pub trust: Trust,
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(&self, req: Request<v1::EnrollRequest>) -> Result<Response<v1::Enrolled>, Status> {
        Ok(Response::new(self.trust.enroll(&req).await?))
    }

    async fn renew(&self, req: Request<v1::RenewRequest>) -> Result<Response<v1::Enrolled>, Status> {
        Ok(Response::new(self.trust.renew(&req).await?))
    }
}
