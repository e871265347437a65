"""A labelled sample for the PHI guard: (text, kinds a careful human reader would flag). Written
for the tests; about half positives (several written to be hard), half clinical negatives that
look number-heavy (doses, lab values, clinical dates with no birth context, guideline years)."""

SAMPLE: list[tuple[str, set[str]]] = [
    # --- names with titles
    ("Mr. Johnson reports chest pain radiating to the left arm.", {"name_with_title"}),
    ("Mrs Alvarez-Ruiz was started on apixaban last week.", {"name_with_title"}),
    ("Seen by Dr. Okafor in clinic; she recommends a stress test.", {"name_with_title"}),
    ("Patient: Maria Gonzalez, 67, presents with dyspnoea.", {"name_with_title"}),
    ("Ms. O'Brien asks whether she can stop her statin.", {"name_with_title"}),
    ("Prof Lindqvist reviewed the echocardiogram.", {"name_with_title"}),
    ("My father John Smith has atrial fibrillation; is warfarin safe?", {"name_with_title"}),  # no title: missed
    # --- dates of birth
    ("DOB: 04/12/1958. Hypertension for ten years.", {"date_of_birth"}),
    ("Date of birth 1962-03-07; on metformin 500 mg twice daily.", {"date_of_birth"}),
    ("She was born on March 3, 1949 and has COPD.", {"date_of_birth"}),
    ("D.O.B. 12.11.71, smoker.", {"date_of_birth"}),
    ("Birthdate: 5th June 1980.", {"date_of_birth"}),
    ("Born in '58, diabetic since his forties.", {"date_of_birth"}),  # partial year only: missed
    # --- phone and fax
    ("Call me at (617) 555-0143 if the pain returns.", {"phone_or_fax"}),
    ("Fax the results to 212-555-0199.", {"phone_or_fax"}),
    ("My number is +44 20 7946 0958.", {"phone_or_fax"}),
    ("Tel: 0151 496 0123 (home).", {"phone_or_fax"}),
    ("Reach the clinic on 555.867.5309.", {"phone_or_fax"}),
    # --- e-mail
    ("Send the report to jane.doe@example.com please.", {"email"}),
    ("contact: r.patel+cardio@nhs.net", {"email"}),
    # --- SSN
    ("SSN 123-45-6789 on file.", {"ssn"}),
    ("Social security number: 078051120.", {"ssn"}),
    ("Her SSN is 219-09-9999.", {"ssn"}),
    # --- MRN
    ("MRN: 00482913, admitted for NSTEMI.", {"medical_record_number"}),
    ("Medical record number A-7734521.", {"medical_record_number"}),
    ("Chart # 5566123 shows prior CABG.", {"medical_record_number"}),
    ("Hospital number RX99213 - please pull old ECGs.", {"medical_record_number"}),
    # --- insurance
    ("Insurance ID: XK4471902, Blue Cross.", {"insurance_number"}),
    ("Medicare number 1EG4TE5MK73.", {"insurance_number"}),
    ("Member ID W123456789 denied the claim.", {"insurance_number"}),
    ("Her MBI is 1EG4-TE5-MK73.", {"insurance_number"}),  # dashed MBI: missed
    # --- street addresses
    ("Lives at 42 Elm Street with his daughter.", {"street_address"}),
    ("Home address: 1600 Pennsylvania Avenue, Washington.", {"street_address"}),
    ("Send to PO Box 771, Springfield.", {"street_address"}),
    ("Apartment 3B, 221 Baker St, London.", {"street_address"}),
    ("She lives on Maple Road near the hospital.", {"street_address"}),  # no house number: missed
    # --- URLs with identifiers
    ("See https://portal.example-hospital.org/patients/884213/labs for the panel.", {"url_with_identifier"}),
    ("Results: https://ehr.example.org/view?mrn=4432190&tab=ecg", {"url_with_identifier"}),
    ("Upload here: http://files.example.com/share?user_id=alice77", {"url_with_identifier"}),
    # --- several kinds
    ("Mr. Chen, DOB 01/02/1950, MRN 7781234, phone 415-555-0112.",
     {"name_with_title", "date_of_birth", "medical_record_number", "phone_or_fax"}),
    # --- negatives: doses, labs, clinical dates, guidelines, codes, generic URLs
    ("Take 5 mg of amlodipine once daily.", set()),
    ("Metoprolol 25-50 mg twice daily; titrate to heart rate 55-60.", set()),
    ("Potassium 4.2 mmol/L, creatinine 1.1 mg/dL, eGFR 72.", set()),
    ("BP 142/88 mmHg, HR 96 bpm, SpO2 94%.", set()),
    ("The 2023 ESC guidelines recommend SGLT2 inhibitors.", set()),
    ("Admitted on 03/14/2024 with chest pain; troponin peaked at 2.3 ng/mL.", set()),
    ("Symptoms began on 2024-01-05 and resolved within two days.", set()),
    ("Follow up in 6-8 weeks with a repeat echo.", set()),
    ("ICD-10 I48.91 (unspecified atrial fibrillation).", set()),
    ("LDL target below 1.4 mmol/L (55 mg/dL) for very high risk.", set()),
    ("Give 0.5-1 g/kg IV immunoglobulin over 2-5 days.", set()),
    ("Dr. visits every 3 months are reasonable.", set()),
    ("The patient is a 67-year-old man with diabetes.", set()),
    ("See https://www.escardio.org/Guidelines for details.", set()),
    ("Warfarin dose 2.5 mg Mon/Wed/Fri, 5 mg other days; INR 2.0-3.0.", set()),
    ("QTc 480 ms on ECG; avoid 2 or more QT-prolonging drugs.", set()),
    ("Ejection fraction 35-40%, NYHA class II.", set()),
    ("A 1-2-3 approach: assess, treat, reassess.", set()),
    ("Pacemaker model 5076-52 lead, implanted 2019.", set()),
    ("Call 911 or your local emergency number.", set()),
    ("Dosage table: 10 mg, 20 mg, 40 mg, 80 mg.", set()),
    ("The CHA2DS2-VASc score is 3; HAS-BLED is 2.", set()),
    ("Aspirin 81 mg plus clopidogrel 75 mg for 12 months after PCI.", set()),
    ("Mr. and Mrs. are courtesy titles; use the patient's preferred name.", set()),
    ("Heparin 5000 units subcutaneously every 8 hours.", set()),
    ("Blood glucose 7.8 mmol/L at 10:30, HbA1c 7.1%.", set()),
    ("Study NCT01234567 enrolled 4,744 patients.", set()),
]
