"""`python -m infra.deploy build|deploy [--dry-run]`: the images to ECR, then the stack.

``build`` builds both Docker images; ``deploy`` builds and pushes what ECR lacks and creates
or updates the CloudFormation stack; ``--dry-run`` prints the plan and touches neither AWS nor
Docker. plan.py decides, cli.py runs it (docs/deploy.md).
"""
