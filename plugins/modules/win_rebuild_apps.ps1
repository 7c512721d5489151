#!powershell

# Install a rebuilt host's pinned applications, certificates and printers in one call.
# Every file is staged and hash-checked before anything runs; a single mismatch stops
# the whole call before any installer starts (a tampered repository never runs).
# Files come from an HTTPS package source, never a UNC share: this module runs in an NTLM
# WinRM session, which has no credentials for a second hop (Access denied; Microsoft Learn,
# "Making the second hop in PowerShell Remoting"). Each installer is waited for as its own
# process, with a timeout: Start-Process -Wait in PowerShell 5.1 also waits for every child
# process it left behind (an updater, a tray agent) and would hang the task.

#AnsibleRequires -CSharpUtil Ansible.Basic

$spec = @{
    options = @{
        repository = @{ type = 'str'; required = $true }
        applications = @{
            type = 'list'; elements = 'dict'; default = @()
            options = @{
                id = @{ type = 'str'; required = $true }
                name = @{ type = 'str'; required = $true }
                version = @{ type = 'str'; required = $true }
                installer = @{ type = 'str'; required = $true }
                type = @{ type = 'str'; required = $true; choices = 'msi', 'exe' }
                arguments = @{ type = 'str'; default = '' }
                sha256 = @{ type = 'str'; required = $true }
            }
        }
        certificates = @{
            type = 'list'; elements = 'dict'; default = @()
            options = @{
                id = @{ type = 'str'; required = $true }
                name = @{ type = 'str'; required = $true }
                file = @{ type = 'str'; required = $true }
                store = @{ type = 'str'; required = $true; choices = 'Root', 'CA', 'My', 'TrustedPublisher' }
                sha256 = @{ type = 'str'; required = $true }
                thumbprint = @{ type = 'str'; required = $true }
            }
        }
        printers = @{
            type = 'list'; elements = 'dict'; default = @()
            options = @{
                name = @{ type = 'str'; required = $true }
                driver = @{ type = 'str'; required = $true }
                port = @{ type = 'str'; required = $true }
            }
        }
        installer_timeout_minutes = @{ type = 'int'; default = 30 }
        update_defender_signatures = @{ type = 'bool'; default = $false }
        defender_signature_source = @{ type = 'str'; default = '' }
        defender_signature_max_age_hours = @{ type = 'int'; default = 12 }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$check = $module.CheckMode
$repository = $module.Params.repository.TrimEnd('\', '/')

$module.Result.changed = $false
$module.Result.applications = [System.Collections.Generic.List[Object]]@()
$module.Result.certificates = [System.Collections.Generic.List[Object]]@()
$module.Result.printers = [System.Collections.Generic.List[Object]]@()
$module.Result.failed_items = [System.Collections.Generic.List[String]]@()

$uninstallKeys = @(
    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*',
    'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\*'
)

Function Get-InstalledVersion {
    param([String]$Name)
    $found = Get-ItemProperty -Path $uninstallKeys -ErrorAction SilentlyContinue |
        Where-Object { $_.PSObject.Properties.Name -contains 'DisplayName' -and $_.DisplayName -eq $Name } |
        Select-Object -First 1
    if ($found) { return [String]$found.DisplayVersion }
    return $null
}

$staging = Join-Path -Path $env:TEMP -ChildPath ("rebuild-apps-" + [Guid]::NewGuid().ToString('N'))

if ($repository -notlike 'https://*') {
    $module.FailJson("repository '$repository' is not an https:// URL: a UNC share cannot be read from this WinRM session (NTLM, no credentials for a second hop)")
}
# Windows PowerShell 5.1 (.NET Framework) may not offer TLS 1.2 by default.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
$ProgressPreference = 'SilentlyContinue'  # the progress bar slows Invoke-WebRequest by orders of magnitude

Function Copy-FromRepository {
    # Download one file to the local staging folder; returns the local path. Never run in place.
    param([String]$Relative)
    $local = Join-Path -Path $staging -ChildPath $Relative.Replace('/', '\')
    $null = New-Item -Path (Split-Path -Path $local -Parent) -ItemType Directory -Force
    $uri = $repository + '/' + (($Relative.Replace('\', '/').Split('/') | ForEach-Object { [Uri]::EscapeDataString($_) }) -join '/')
    Invoke-WebRequest -Uri $uri -OutFile $local -UseBasicParsing -ErrorAction Stop
    return $local
}

# 0 success, 3010 success + reboot required, 1641 success + the installer started a reboot
# (Windows Installer error codes, Microsoft Learn).
$installerSuccess = @(0, 3010, 1641)

Function Invoke-Installer {
    # Waits for the installer's own process only, bounded; returns its exit code.
    param([String]$FilePath, [String]$Arguments, [int]$TimeoutMinutes)
    $start = @{ FilePath = $FilePath; PassThru = $true }
    if ($Arguments) { $start.ArgumentList = $Arguments }  # an empty -ArgumentList is refused
    $proc = Start-Process @start
    $null = $proc.Handle  # hold the handle now, or ExitCode is unreadable once it exits
    if (-not $proc.WaitForExit($TimeoutMinutes * 60 * 1000)) {
        try { $proc.Kill() } catch { $null = $_ }
        throw "installer still running after $TimeoutMinutes minute(s); stopped"
    }
    $proc.WaitForExit()  # flush: the exit code is set once the process object has caught up
    return $proc.ExitCode
}

Function Test-FileHash {
    param([String]$Path, [String]$Expected)
    $actual = (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant()
    return @{ ok = ($actual -eq $Expected.ToLowerInvariant()); actual = $actual }
}

# 1. What is missing.
$appWork = [System.Collections.Generic.List[Object]]@()
foreach ($app in $module.Params.applications) {
    $before = Get-InstalledVersion -Name $app.name
    $entry = [Ordered]@{
        id = $app.id; name = $app.name; version = $app.version; before = $before; after = $before
        changed = $false; status = 'present'; sha256_ok = $null; error = $null
    }
    $module.Result.applications.Add($entry)
    if ($before -ne $app.version) {
        $entry.status = if ($check) { 'would_install' } else { 'pending' }
        $entry.changed = $true
        $appWork.Add(@{ spec = $app; entry = $entry })
    }
}

$certWork = [System.Collections.Generic.List[Object]]@()
foreach ($cert in $module.Params.certificates) {
    $thumb = $cert.thumbprint.ToUpperInvariant()
    $present = Test-Path -LiteralPath ("Cert:\LocalMachine\{0}\{1}" -f $cert.store, $thumb)
    $entry = [Ordered]@{
        id = $cert.id; store = $cert.store; thumbprint = $thumb; changed = (-not $present)
        status = if ($present) { 'present' } elseif ($check) { 'would_import' } else { 'pending' }
        error = $null
    }
    $module.Result.certificates.Add($entry)
    if (-not $present) { $certWork.Add(@{ spec = $cert; entry = $entry }) }
}

$printerWork = [System.Collections.Generic.List[Object]]@()
foreach ($printer in $module.Params.printers) {
    $existing = Get-Printer -Name $printer.name -ErrorAction SilentlyContinue
    $same = $existing -and $existing.DriverName -eq $printer.driver -and $existing.PortName -eq ("IP_" + $printer.port)
    $entry = [Ordered]@{
        name = $printer.name; changed = (-not $same)
        status = if ($same) { 'present' } elseif ($check) { 'would_add' } else { 'pending' }
        error = $null
    }
    $module.Result.printers.Add($entry)
    if (-not $same) { $printerWork.Add(@{ spec = $printer; entry = $entry; existing = $existing }) }
}

if ($check) {
    $module.Result.changed = ($appWork.Count + $certWork.Count + $printerWork.Count) -gt 0
    $module.ExitJson()
}

# 2. Stage and verify every file needed before running anything.
$mismatch = [System.Collections.Generic.List[String]]@()
try {
    foreach ($work in @($appWork) + @($certWork)) {
        $relative = if ($work.spec.ContainsKey('installer')) { $work.spec.installer } else { $work.spec.file }
        try {
            $work.local = Copy-FromRepository -Relative $relative
            $hash = Test-FileHash -Path $work.local -Expected $work.spec.sha256
            if ($work.entry.Contains('sha256_ok')) { $work.entry.sha256_ok = $hash.ok }
            if (-not $hash.ok) {
                $work.entry.status = 'failed'
                $work.entry.error = "SHA-256 of $relative is $($hash.actual), catalogue says $($work.spec.sha256)"
                $mismatch.Add($work.spec.id)
            }
        }
        catch {
            $work.entry.status = 'failed'
            $work.entry.error = "cannot download $relative from ${repository}: $($_.Exception.Message)"
            $mismatch.Add($work.spec.id)
        }
    }
    if ($mismatch.Count -gt 0) {
        foreach ($id in $mismatch) { $module.Result.failed_items.Add($id) }
        foreach ($work in @($appWork) + @($certWork)) {
            if ($work.entry.status -eq 'pending') { $work.entry.status = 'not_run'; $work.entry.changed = $false }
        }
        foreach ($work in $printerWork) { $work.entry.status = 'not_run'; $work.entry.changed = $false }
        $module.FailJson("installer verification failed, nothing was installed: $($mismatch -join ', ')")
    }

    # 3. Install, import, add.
    foreach ($work in $appWork) {
        $app = $work.spec
        $entry = $work.entry
        try {
            if ($app.type -eq 'msi') {
                $argList = "/i `"$($work.local)`" /qn /norestart $($app.arguments)".Trim()
                $exitCode = Invoke-Installer -FilePath "$env:SystemRoot\System32\msiexec.exe" -Arguments $argList -TimeoutMinutes $module.Params.installer_timeout_minutes
            }
            else {
                $exitCode = Invoke-Installer -FilePath $work.local -Arguments $app.arguments -TimeoutMinutes $module.Params.installer_timeout_minutes
            }
        }
        catch {
            $entry.status = 'failed'
            $entry.error = $_.Exception.Message
            $module.Result.failed_items.Add($app.id)
            continue
        }
        if ($exitCode -notin $installerSuccess) {
            $entry.status = 'failed'
            $entry.error = "installer exited with $exitCode"
            $module.Result.failed_items.Add($app.id)
            continue
        }
        $entry.after = Get-InstalledVersion -Name $app.name
        if ($entry.after -ne $app.version) {
            $entry.status = 'failed'
            $entry.error = "after install, '$($app.name)' reports version '$($entry.after)', expected '$($app.version)'"
            $module.Result.failed_items.Add($app.id)
            continue
        }
        $entry.status = if ($entry.before) { 'upgraded' } else { 'installed' }
        if ($exitCode -in 3010, 1641) { $module.Result.reboot_required = $true }
        $module.Result.changed = $true
    }

    foreach ($work in $certWork) {
        $cert = $work.spec
        $imported = Import-Certificate -FilePath $work.local -CertStoreLocation ("Cert:\LocalMachine\" + $cert.store)
        if ($imported.Thumbprint -ne $cert.thumbprint.ToUpperInvariant()) {
            $work.entry.status = 'failed'
            $work.entry.error = "imported thumbprint $($imported.Thumbprint) is not the catalogue's $($cert.thumbprint)"
            $module.Result.failed_items.Add($cert.id)
            continue
        }
        $work.entry.status = 'imported'
        $module.Result.changed = $true
    }

    foreach ($work in $printerWork) {
        $printer = $work.spec
        $portName = "IP_" + $printer.port
        try {
            if (-not (Get-PrinterPort -Name $portName -ErrorAction SilentlyContinue)) {
                Add-PrinterPort -Name $portName -PrinterHostAddress $printer.port -ErrorAction Stop
            }
            if ($work.existing) {
                Set-Printer -Name $printer.name -DriverName $printer.driver -PortName $portName -ErrorAction Stop
            }
            else {
                Add-Printer -Name $printer.name -DriverName $printer.driver -PortName $portName -ErrorAction Stop
            }
            $work.entry.status = 'added'
            $module.Result.changed = $true
        }
        catch {
            $work.entry.status = 'failed'
            $work.entry.error = $_.Exception.Message
            $module.Result.failed_items.Add($printer.name)
        }
    }

    if ($module.Params.update_defender_signatures) {
        $status = Get-MpComputerStatus
        $age = ((Get-Date) - $status.AntivirusSignatureLastUpdated).TotalHours
        $updated = $false
        if ($age -gt $module.Params.defender_signature_max_age_hours) {
            $source = $module.Params.defender_signature_source
            if ($source) {
                Set-MpPreference -SignatureDefinitionUpdateFileSharesSources $source
                Update-MpSignature -UpdateSource FileShares -ErrorAction Stop
            }
            else {
                Update-MpSignature -ErrorAction Stop
            }
            $status = Get-MpComputerStatus
            $updated = $true
            $module.Result.changed = $true
        }
        $module.Result.defender = @{
            updated = $updated
            signature_version = $status.AntivirusSignatureVersion
            signature_last_updated = $status.AntivirusSignatureLastUpdated.ToString('s')
        }
    }
}
finally {
    Remove-Item -LiteralPath $staging -Recurse -Force -ErrorAction SilentlyContinue
}

if ($module.Result.failed_items.Count -gt 0) {
    $module.FailJson("failed: $($module.Result.failed_items -join ', ')")
}
$module.ExitJson()
