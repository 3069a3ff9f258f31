"""Proves the strictness rules of proxy.py: for each, moto alone (a proxy run with --no-strict)
accepts the request, and the project's proxy refuses it with AWS's error.

Starts its own moto_server (found next to sys.executable) on a free port, and two proxies in
front of it: `strict` (the rules on) and `lax` (--no-strict). Prints one line per rule; exits 1
if any rule failed.

usage: python test_strictness.py
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
DELAY = 2.0  # --consistency-delay of the strict proxy: room for the checks made inside it
AMI = "ami-12c6146b"  # one of moto's
# Dummies only: never a real account's credentials.
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION="us-east-1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


class Aws:
    """boto3 clients of one endpoint, and its request log."""

    def __init__(self, endpoint, log):
        config = Config(retries={"total_max_attempts": 1})  # a refusal must show, not be retried
        self.ec2, self.elb, self.ssm = (boto3.client(s, endpoint_url=endpoint, config=config)
                                        for s in ("ec2", "elbv2", "ssm"))
        self.endpoint = endpoint
        self.log = log

    def logged(self, line):
        with open(self.log) as f:
            return line in f.read().splitlines()


def refused(code, call, *args, **kwargs):
    """Makes the call, which must fail with code; returns AWS's message."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        error = e.response["Error"]
        assert error["Code"] == code, f"{call.__name__}: {error['Code']} ({error['Message']}), not {code}"
        return error["Message"]
    raise AssertionError(f"{call.__name__} succeeded: AWS refuses it with {code}")


def by_name(name, *values):
    return [{"Name": name, "Values": list(values)}]


def network(aws, igw=True, public=False):
    """A VPC with two subnets in two zones (as a load balancer needs), an internet gateway if
    igw, public IPs for instances if public."""
    vpc = aws.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for n, z in ((1, "a"), (2, "b"))]
    if public:
        aws.ec2.modify_subnet_attribute(SubnetId=subnets[0], MapPublicIpOnLaunch={"Value": True})
    gateway = None
    if igw:
        gateway = aws.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        aws.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    return vpc, subnets, gateway


def group(aws, vpc, name):
    return aws.ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]


def instance(aws, subnet, groups=(), **extra):
    return aws.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=list(groups), **extra)["Instances"][0]["InstanceId"]


def load_balancer(aws, name, subnets, **extra):
    answer = aws.elb.create_load_balancer(Name=name, Subnets=subnets, **extra)
    return answer["LoadBalancers"][0]["LoadBalancerArn"]


def rule1_security_group_in_use(strict, lax):
    vpc, subnets, _ = network(lax)
    # Referenced by another group's rule.
    used = group(lax, vpc, "referenced")
    lax.ec2.authorize_security_group_ingress(GroupId=group(lax, vpc, "referencing"), IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": used}]}])
    message = refused("DependencyViolation", strict.ec2.delete_security_group, GroupId=used)
    assert message == f"resource {used} has a dependent object", message
    lax.ec2.delete_security_group(GroupId=used)
    # Used by an instance: until it is terminated.
    used = group(lax, vpc, "instance")
    i = instance(lax, subnets[0], [used])
    refused("DependencyViolation", strict.ec2.delete_security_group, GroupId=used)
    lax.ec2.terminate_instances(InstanceIds=[i])
    strict.ec2.delete_security_group(GroupId=used)
    # Used by a network interface.
    used = group(lax, vpc, "interface")
    lax.ec2.create_network_interface(SubnetId=subnets[0], Groups=[used])
    refused("DependencyViolation", strict.ec2.delete_security_group, GroupId=used)
    lax.ec2.delete_security_group(GroupId=used)
    assert strict.logged("ec2:DeleteSecurityGroup refused")
    return "DependencyViolation: referenced by a rule, used by an instance, by an interface"


def rule2_subnet_in_use(strict, lax):
    _, subnets, _ = network(lax)
    instance(lax, subnets[0])
    message = refused("DependencyViolation", strict.ec2.delete_subnet, SubnetId=subnets[0])
    assert message == f"The subnet '{subnets[0]}' has dependencies and cannot be deleted.", message
    lax.ec2.delete_subnet(SubnetId=subnets[0])
    _, subnets, _ = network(lax)
    load_balancer(lax, "rule2", subnets)
    refused("DependencyViolation", strict.ec2.delete_subnet, SubnetId=subnets[1])
    lax.ec2.delete_subnet(SubnetId=subnets[1])
    assert strict.logged("ec2:DeleteSubnet refused")
    return "DependencyViolation: an instance in it, a load balancer in it"


def rule3_gateway_with_public_addresses(strict, lax):
    vpc, subnets, gateway = network(lax, public=True)
    i = instance(lax, subnets[0])
    detach = dict(InternetGatewayId=gateway, VpcId=vpc)
    message = refused("DependencyViolation", strict.ec2.detach_internet_gateway, **detach)
    assert message == (f"Network {vpc} has some mapped public address(es). Please unmap those public "
                       "address(es) before detaching the gateway."), message
    lax.ec2.detach_internet_gateway(**detach)
    # The instance terminated, an internet-facing load balancer still maps public addresses.
    lax.ec2.attach_internet_gateway(**detach)
    lax.ec2.terminate_instances(InstanceIds=[i])
    arn = load_balancer(lax, "rule3", subnets)
    refused("DependencyViolation", strict.ec2.detach_internet_gateway, **detach)
    lax.elb.delete_load_balancer(LoadBalancerArn=arn)
    strict.ec2.detach_internet_gateway(**detach)
    assert strict.logged("ec2:DetachInternetGateway refused")
    return "DependencyViolation: an instance's public IP, an internet-facing load balancer"


def rule4_eventual_consistency(strict, lax):
    vpc, subnets, _ = network(lax)
    old_group = lax.elb.create_target_group(Name="rule4-old", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    tag = [{"ResourceType": "instance", "Tags": [{"Key": "rule", "Value": "4"}]}]
    # Created through the strict proxy, then named at once.
    first = time.monotonic()  # the proxy starts each window later, when moto has answered
    i = strict.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnets[0],
                                 TagSpecifications=tag)["Instances"][0]["InstanceId"]
    sg = group(strict, vpc, "rule4")
    tg = strict.elb.create_target_group(Name="rule4", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    last = time.monotonic()
    ingress = dict(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                              "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    tagged = by_name("tag:rule", "4")
    tags = [{"Key": "k", "Value": "v"}]
    calls = [
        ("InvalidInstanceID.NotFound", strict.ec2.describe_instances, dict(InstanceIds=[i])),
        ("InvalidInstanceID.NotFound", strict.ec2.create_tags, dict(Resources=[i], Tags=tags)),
        ("InvalidInstanceID.NotFound", strict.ec2.modify_instance_attribute,
         dict(InstanceId=i, DisableApiTermination={"Value": False})),
        ("InvalidGroup.NotFound", strict.ec2.authorize_security_group_ingress, ingress),
        ("InvalidGroup.NotFound", strict.ec2.create_tags, dict(Resources=[sg], Tags=tags)),
        ("InvalidGroup.NotFound", strict.ec2.describe_security_groups, dict(GroupIds=[sg])),
        ("TargetGroupNotFound", strict.elb.modify_target_group_attributes,
         dict(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])),
        ("TargetGroupNotFound", strict.elb.describe_target_health, dict(TargetGroupArn=tg)),
        ("TargetGroupNotFound", strict.elb.register_targets, dict(TargetGroupArn=tg, Targets=[{"Id": i}])),
        ("InvalidTarget", strict.elb.register_targets, dict(TargetGroupArn=old_group, Targets=[{"Id": i}])),
    ]
    for code, call, kwargs in calls:
        refused(code, call, **kwargs)
    listed = strict.ec2.describe_instances(Filters=tagged)["Reservations"]
    assert listed == [], f"a new instance is listed at once: {listed}"
    assert time.monotonic() - first < DELAY, "too slow to check inside the window: raise DELAY"
    # moto alone knows them all at once.
    assert lax.ec2.describe_instances(InstanceIds=[i])["Reservations"]
    assert lax.ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    lax.elb.describe_target_health(TargetGroupArn=tg)
    # After the delay, AWS knows them too.
    time.sleep(last + DELAY + 0.1 - time.monotonic())
    for _, call, kwargs in calls:
        call(**kwargs)
    listed = strict.ec2.describe_instances(Filters=tagged)["Reservations"]
    assert [x["InstanceId"] for r in listed for x in r["Instances"]] == [i], listed
    strict.ec2.terminate_instances(InstanceIds=[i])
    assert strict.logged("ec2:DescribeInstances refused")
    return f"NotFound for {DELAY:g} s: {', '.join(sorted({c for c, _, _ in calls}))}; new instances unlisted"


def rule5_client_token(strict, lax):
    _, subnets, _ = network(lax)

    def launch(aws, token):
        tag = [{"ResourceType": "instance", "Tags": [{"Key": "token", "Value": token}]}]
        return aws.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnets[0],
                                     ClientToken=token, TagSpecifications=tag)["ReservationId"]

    def launched(token):
        reservations = lax.ec2.describe_instances(Filters=by_name("tag:token", token))["Reservations"]
        return [i["InstanceId"] for r in reservations for i in r["Instances"]]

    assert launch(lax, "lax-token") != launch(lax, "lax-token")
    assert len(launched("lax-token")) == 2, "moto alone launches twice"
    first = launch(strict, "strict-token")
    assert launch(strict, "strict-token") == first, "a retry gets the same reservation"
    assert len(launched("strict-token")) == 1, launched("strict-token")
    return "same reservation, one instance"


def rule6_parameter_size(strict, lax):
    for tier in ({}, {"Tier": "Standard"}):
        name = tier.get("Tier", "default")
        lax.ssm.put_parameter(Name=f"/rule6/lax-{name}", Value="x" * 4097, Type="String", **tier)
        message = refused("ValidationException", strict.ssm.put_parameter, Name=f"/rule6/{name}",
                          Value="x" * 4097, Type="String", **tier)
        assert message.startswith("Standard tier parameters support a maximum parameter value of 4096"), \
            message
    strict.ssm.put_parameter(Name="/rule6/standard", Value="x" * 4096, Type="String")
    strict.ssm.put_parameter(Name="/rule6/advanced", Value="x" * 8192, Type="String", Tier="Advanced")
    lax.ssm.put_parameter(Name="/rule6/lax-big", Value="x" * 8193, Type="String", Tier="Advanced")
    refused("ValidationException", strict.ssm.put_parameter, Name="/rule6/big", Value="x" * 8193,
            Type="String", Tier="Advanced")
    assert strict.logged("ssm:PutParameter refused")
    return "ValidationException: > 4096 bytes standard, > 8192 advanced"


def rule7_load_balancer_without_gateway(strict, lax):
    vpc, subnets, _ = network(lax, igw=False)
    lax.elb.create_load_balancer(Name="rule7-lax", Subnets=subnets)
    message = refused("InvalidSubnet", strict.elb.create_load_balancer, Name="rule7", Subnets=subnets)
    assert message == f"VPC {vpc} has no internet gateway", message
    refused("InvalidSubnet", strict.elb.create_load_balancer, Name="rule7", Scheme="internet-facing",
            SubnetMappings=[{"SubnetId": s} for s in subnets])
    load_balancer(strict, "rule7-internal", subnets, Scheme="internal")
    gateway = lax.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    lax.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    load_balancer(strict, "rule7", subnets)
    assert strict.logged("elasticloadbalancing:CreateLoadBalancer refused")
    return "InvalidSubnet: internet-facing without a gateway; internal ones pass"


def rule8_instance_profiles(strict, lax):
    _, subnets, _ = network(lax)
    iam = boto3.client("iam", endpoint_url=lax.endpoint)
    # Unknown: moto answers with IAM's NoSuchEntity, EC2 with InvalidParameterValue.
    message = refused("InvalidParameterValue", instance, strict, subnets[0],
                      IamInstanceProfile={"Name": "rule8-none"})
    assert message.endswith("Invalid IAM Instance Profile name"), message
    # Without a role: unusable.
    iam.create_instance_profile(InstanceProfileName="rule8")
    arn = iam.get_instance_profile(InstanceProfileName="rule8")["InstanceProfile"]["Arn"]
    refused("InvalidParameterValue", instance, strict, subnets[0], IamInstanceProfile={"Arn": arn})
    # Just given its role: unusable for --profile-delay, usable at once by moto.
    iam.create_role(RoleName="rule8", AssumeRolePolicyDocument="{}")
    strict_iam = boto3.client("iam", endpoint_url=strict.endpoint)
    strict_iam.add_role_to_instance_profile(InstanceProfileName="rule8", RoleName="rule8")
    instance(lax, subnets[0], IamInstanceProfile={"Arn": arn})
    refused("InvalidParameterValue", instance, strict, subnets[0], IamInstanceProfile={"Arn": arn})
    time.sleep(DELAY)
    # Then every instance of a launch gets it (moto: the first only).
    ids = [i["InstanceId"] for i in strict.ec2.run_instances(
        ImageId=AMI, MinCount=3, MaxCount=3, SubnetId=subnets[0], IamInstanceProfile={"Arn": arn})["Instances"]]
    time.sleep(DELAY)
    got = [i.get("IamInstanceProfile", {}).get("Arn") for r in strict.ec2.describe_instances(InstanceIds=ids)
           ["Reservations"] for i in r["Instances"]]
    assert got == [arn] * 3, got
    assert strict.logged("ec2:RunInstances refused")
    return "InvalidParameterValue: unknown, roleless, just given its role; every instance of a launch has it"


def rule9_registry_tokens(strict, lax):
    import base64
    ecr = lambda aws: boto3.client("ecr", endpoint_url=aws.endpoint)
    moto_token = ecr(lax).get_authorization_token()["authorizationData"][0]
    assert moto_token["expiresAt"].year < 2020, moto_token  # moto: expired long ago
    data = ecr(strict).get_authorization_token()["authorizationData"][0]
    user, token = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS" and token != base64.b64decode(moto_token["authorizationToken"]).decode().split(":")[1]
    left = data["expiresAt"].timestamp() - time.time()
    assert 11.9 * 3600 < left <= 12 * 3600, left
    assert data["proxyEndpoint"] == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", data
    return "a token of the world's own, valid 12 h, for the account's registry"


def rule11_certificates_after_dns_validation(strict, lax):
    from cryptography import x509
    config = Config(retries={"total_max_attempts": 1})
    acm, r53 = (boto3.client(s, endpoint_url=strict.endpoint, config=config) for s in ("acm", "route53"))
    moto_acm = boto3.client("acm", endpoint_url=lax.endpoint, config=config)
    record = lambda client, arn: client.describe_certificate(CertificateArn=arn)["Certificate"][
        "DomainValidationOptions"][0]["ResourceRecord"]
    one, two = (moto_acm.request_certificate(DomainName=d, ValidationMethod="DNS")["CertificateArn"]
                for d in ("one.example.test", "two.example.test"))
    assert record(moto_acm, one)["Value"] == record(moto_acm, two)["Value"]  # moto: one record for all

    domains = ["app.example.test", "*.app.example.test", "api.example.test"]
    arn = acm.request_certificate(DomainName=domains[0], SubjectAlternativeNames=domains,
                                  ValidationMethod="DNS")["CertificateArn"]
    status = lambda: acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    records = {o["DomainName"]: o["ResourceRecord"] for o in options}
    assert records[domains[0]] == records[domains[1]] != records[domains[2]], records  # a wildcard shares its base's
    assert status() == "PENDING_VALIDATION"
    refused("RequestInProgressException", acm.get_certificate, CertificateArn=arn)
    _, subnets, _ = network(strict)
    lb = load_balancer(strict, "acm-pending", subnets)
    listener = dict(LoadBalancerArn=lb, Protocol="HTTPS", Certificates=[{"CertificateArn": arn}],
                    DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    refused("CertificateNotFound", strict.elb.create_listener, Port=443, **listener)
    lax.elb.create_listener(Port=8443, **listener)  # moto takes a pending certificate

    # One record of two in the zone: still pending, however long; both: issued a moment later.
    zone = r53.create_hosted_zone(Name="example.test", CallerReference="rule11")["HostedZone"]["Id"]

    def add(domain):
        r = records[domain]
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT",
            "ResourceRecordSet": {"Name": r["Name"], "Type": "CNAME", "TTL": 300,
                                  "ResourceRecords": [{"Value": r["Value"]}]}}]})
    add(domains[0])
    assert status() == "PENDING_VALIDATION"
    time.sleep(DELAY + 0.5)
    assert status() == "PENDING_VALIDATION"
    add(domains[2])
    assert status() == "PENDING_VALIDATION"  # found, issued after --acm-issue-seconds
    time.sleep(DELAY + 0.5)
    assert status() == "ISSUED"
    got = acm.get_certificate(CertificateArn=arn)
    cert, ca = (x509.load_pem_x509_certificate(got[k].encode()) for k in ("Certificate", "CertificateChain"))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == sorted(domains), names
    strict.elb.create_listener(Port=443, **listener)
    return "pending until its CNAMEs are in Route 53, then issued by the world's CA; listeners refuse it before"


RULES = [rule1_security_group_in_use, rule2_subnet_in_use, rule3_gateway_with_public_addresses,
         rule4_eventual_consistency, rule5_client_token, rule6_parameter_size,
         rule7_load_balancer_without_gateway, rule8_instance_profiles, rule9_registry_tokens,
         rule11_certificates_after_dns_validation]


def main():
    procs = []
    # Stopped by a signal, the processes are still cleaned up (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            def start(args, port, stderr=None):  # a proxy's tracebacks show with the results
                procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr))
                wait_for_port(port, procs[-1])
                return f"http://127.0.0.1:{port}"

            port = free_port()
            moto = start([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                          "-p", str(port)], port, subprocess.DEVNULL)  # moto logs every request

            def proxy(name, *flags):
                port = free_port()
                log = f"{tmp}/{name}.log"
                url = start([sys.executable, os.path.join(HERE, "proxy.py"), "--port", str(port),
                             "--target", moto, "--log", log, *flags], port)
                return Aws(url, log)

            strict = proxy("strict", "--consistency-delay", str(DELAY), "--profile-delay", str(DELAY),
                           "--acm-issue-seconds", str(DELAY), "--world", f"{tmp}/world")
            lax = proxy("lax", "--no-strict")
            failed = 0
            for rule in RULES:
                started = time.monotonic()
                try:
                    result = f"ok    {rule(strict, lax)}"
                except (AssertionError, ClientError) as e:
                    failed += 1
                    result = f"FAIL  {type(e).__name__}: {e}"
                print(f"{rule.__name__:38} {time.monotonic() - started:5.2f}s  {result}", flush=True)
            return 1 if failed else 0
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    sys.exit(main())
