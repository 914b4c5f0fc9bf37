//! The guard as a tower layer, for the axum listeners (the service, the
//! control API and console, the Toxiproxy-compatible API): a refused
//! request never reaches the inner service and is answered by the
//! listener's own `refuse` function, so each keeps its error body.

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures::future::Either;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::{Guard, Refusal};

/// Wraps a service in the [`Guard`]; `refuse` turns a [`Refusal`] into the
/// listener's own error response.
#[derive(Debug, Clone)]
pub struct GuardLayer<F> {
    guard: Guard,
    refuse: F,
}

impl<F> GuardLayer<F> {
    pub fn new(guard: Guard, refuse: F) -> Self {
        GuardLayer { guard, refuse }
    }
}

impl<S, F: Clone> Layer<S> for GuardLayer<F> {
    type Service = GuardService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            guard: self.guard.clone(),
            refuse: self.refuse.clone(),
        }
    }
}

/// The service [`GuardLayer`] makes.
#[derive(Debug, Clone)]
pub struct GuardService<S, F> {
    inner: S,
    guard: Guard,
    refuse: F,
}

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for GuardService<S, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    F: Fn(&Refusal) -> Response<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self
            .guard
            .check(request.method(), request.uri(), request.headers())
        {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refusal) => {
                tracing::warn!(refused = refusal.kind(), detail = %refusal, "request refused");
                Either::Left(ready(Ok((self.refuse)(&refusal))))
            }
        }
    }
}
