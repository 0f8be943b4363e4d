//! Conversational Intelligence operators: custom operators, attachments to services, and where
//! operator results are sealed.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::Cursor;
use crate::model::operators::{CustomOperator, OperatorResultRecord, OperatorUpdate};

/// Operator metadata.
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Adds a custom operator.
    async fn insert_custom_operator(&self, operator: &CustomOperator) -> StoreResult<()>;
    /// One custom operator of an account.
    async fn custom_operator(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<CustomOperator>>;
    /// An account's custom operators, newest first.
    async fn list_custom_operators(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<CustomOperator>>;
    /// Replaces an operator's name and configuration if its stored version is still
    /// `expected_version`; the stored version becomes `operator.version`.
    async fn update_custom_operator(
        &self,
        operator: &CustomOperator,
        expected_version: i64,
    ) -> StoreResult<OperatorUpdate>;
    /// Deletes a custom operator and detaches it from every service; `false` when it did not
    /// exist.
    async fn delete_custom_operator(&self, account_sid: &str, sid: &str) -> StoreResult<bool>;

    /// Attaches an operator to a service (attaching twice is one attachment).
    async fn attach_operator(
        &self,
        account_sid: &str,
        service_sid: &str,
        operator_sid: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Detaches an operator from a service; `false` when it was not attached.
    async fn detach_operator(
        &self,
        account_sid: &str,
        service_sid: &str,
        operator_sid: &str,
    ) -> StoreResult<bool>;
    /// The operators attached to a service, in the order they were attached.
    async fn attached_operators(
        &self,
        account_sid: &str,
        service_sid: &str,
    ) -> StoreResult<Vec<String>>;
    /// Detaches every operator of a deleted service.
    async fn detach_all_operators(&self, account_sid: &str, service_sid: &str) -> StoreResult<()>;

    /// Records where one operator result of a transcript is sealed.
    async fn insert_operator_result(&self, result: &OperatorResultRecord) -> StoreResult<()>;
    /// The operator results of a transcript, in operator order.
    async fn operator_results(
        &self,
        account_sid: &str,
        transcript_sid: &str,
    ) -> StoreResult<Vec<OperatorResultRecord>>;
    /// Forgets the operator results of a transcript and returns them, so the caller destroys
    /// their objects.
    async fn delete_operator_results(
        &self,
        account_sid: &str,
        transcript_sid: &str,
    ) -> StoreResult<Vec<OperatorResultRecord>>;
}
