mock_provider "aws" {
  mock_resource "aws_s3_bucket" {
    override_during = plan
    defaults        = { arn = "arn:aws:s3:::damso-test-artifacts" }
  }
}

variables {
  bucket_name = "damso-test-artifacts"
}

run "bucket_is_private_versioned_encrypted" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this.bucket == "damso-test-artifacts"
    error_message = "Bucket name should come from var.bucket_name."
  }

  assert {
    condition     = aws_s3_bucket.this.force_destroy == false
    error_message = "force_destroy must default to false."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this.block_public_acls &&
      aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls &&
      aws_s3_bucket_public_access_block.this.restrict_public_buckets
    )
    error_message = "Every public access block setting must be true."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "Versioning must be enabled."
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "Objects must be encrypted with AES256 by default."
  }

  assert {
    condition     = aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled (BucketOwnerEnforced)."
  }
}

run "force_destroy_for_sandbox" {
  command = plan

  variables {
    force_destroy = true
  }

  assert {
    condition     = aws_s3_bucket.this.force_destroy
    error_message = "force_destroy should follow the variable."
  }
}

run "tls_only_and_old_versions_expire" {
  command = plan

  assert {
    condition = jsondecode(aws_s3_bucket_policy.this[0].policy).Statement[0] == {
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = ["arn:aws:s3:::damso-test-artifacts", "arn:aws:s3:::damso-test-artifacts/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }
    error_message = "The bucket policy must refuse every request that does not use TLS."
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.noncurrent_version_expiration[0].noncurrent_days if r.id == "expire-noncurrent-versions"]) == 90
    error_message = "Old object versions must expire after noncurrent_version_days (90 by default)."
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.abort_incomplete_multipart_upload[0].days_after_initiation if r.id == "expire-noncurrent-versions"]) == 7
    error_message = "Unfinished multipart uploads must be cleaned up."
  }

  assert {
    condition = (
      one([for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : length(r.expiration) if r.id == "expire-noncurrent-versions"]) == 0 &&
      one([for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.expiration[0].expired_object_delete_marker if r.id == "remove-expired-delete-markers"])
    )
    error_message = "No rule may expire current objects (releases are kept for rollback); only delete markers left alone go."
  }
}

run "the_emulator_gets_no_policy" {
  command = plan

  variables {
    deny_insecure_transport = false
  }

  assert {
    condition     = length(aws_s3_bucket_policy.this) == 0
    error_message = "deny_insecure_transport = false must leave the bucket without a policy."
  }
}

run "the_emulator_gets_no_lifecycle_rules" {
  command = plan

  variables {
    lifecycle_rules = false
  }

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.this) == 0
    error_message = "lifecycle_rules = false must leave the bucket without a lifecycle configuration."
  }
}
